import FerryFix
import FerryGuest

/// The text `ferry fix` prints: the plan, what was written, the verdicts before and after.
enum FixOutput {
    static func plan(_ plan: FixPlan, report: InspectionReport) -> String {
        let w = report.windows
        var lines = [
            "ferry fix: \(plan.disk): \(w?.productName ?? "Windows") \(w?.version ?? "") in partition \(plan.partition) (\(plan.systemRoot)), control sets \(plan.controlSets.joined(separator: ", "))"
        ]
        for refusal in plan.volumeRefusals { lines.append("  ! volume: \(refusal)") }
        for step in plan.steps {
            let what: String
            switch step.state {
            case .apply:
                var parts: [String] = []
                if !step.edits.isEmpty { parts.append("\(step.edits.count) registry entries") }
                if !step.sectors.isEmpty { parts.append("\(step.sectors.count) boot sectors") }
                what = "will change " + parts.joined(separator: ", ")
            case .done: what = "already done"
            case .notApplicable: what = "not applicable"
            case .refused: what = "REFUSED"
            }
            lines.append("  \(step.id.rawValue.padding(15)) \(what) — \(step.id.summary)")
            for note in step.notes { lines.append("      \(note)") }
            for edit in step.edits { lines.append("      " + describe(edit)) }
            for sector in step.sectors { lines.append("      \(sector.what) at byte \(sector.offset)") }
        }
        return lines.joined(separator: "\n")
    }

    static func describe(_ edit: RegistryEdit) -> String {
        let key = "\(edit.hive.rawValue)\\\(edit.keyPath)"
        switch edit.kind {
        case .createKey: return "+ \(key)"
        case .setValue(let name, let type, let data): return "  \(key): \(name.isEmpty ? "(default)" : name) = \(value(type, data))"
        case .deleteValue(let name): return "- \(key): \(name)"
        }
    }

    static func value(_ type: UInt32, _ data: [UInt8]) -> String {
        switch type {
        case RegistryData.dword where data.count == 4:
            let v = UInt32(data[0]) | UInt32(data[1]) << 8 | UInt32(data[2]) << 16 | UInt32(data[3]) << 24
            return "\(v) (REG_DWORD)"
        case RegistryData.sz, RegistryData.expandSZ:
            var units: [UInt16] = []
            var i = 0
            while i + 1 < data.count { units.append(UInt16(data[i]) | UInt16(data[i + 1]) << 8); i += 2 }
            if units.last == 0 { units.removeLast() }
            return "\"\(String(decoding: units, as: UTF16.self))\" (\(type == RegistryData.sz ? "REG_SZ" : "REG_EXPAND_SZ"))"
        default:
            return "\(data.count) bytes (type \(type))"
        }
    }

    static func result(_ r: FixApplier.Result, plan: FixPlan, disk: String) -> String {
        guard let undo = r.undoPath else { return "ferry fix: nothing written" }
        var what = r.hivesWritten.map { "\($0.rawValue) hive" }
        if !plan.sectors.isEmpty { what.append("\(plan.sectors.count) boot sectors") }
        return "ferry fix: wrote \(r.writes) ranges, \(r.bytesWritten) bytes (\(what.joined(separator: ", "))); undo with: ferry fix --undo \(undo) \(disk)"
    }

    static func verdicts(before: [Verdict], after: [Verdict], steps: [FixStepID]) -> String {
        let ids = Set(steps.flatMap(\.verdicts))
        var lines = ["verdicts before → after:"]
        for old in before where ids.contains(old.id) {
            let new = after.first { $0.id == old.id }
            let mark = { (v: Verdict?) in v.map { $0.ok ? "ok" : $0.severity.rawValue } ?? "gone" }
            lines.append("  \(old.id.padding(17)) \(mark(old)) → \(mark(new))\(new.map { $0.ok ? "" : ": " + $0.reason } ?? "")")
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
