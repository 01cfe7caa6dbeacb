import FerryDisk
import FerryNBD
import FerryTestSupport
import Foundation
import Testing

/// The server-wide memory budget (`NBDMemoryBudget`): many connections asking big READs and
/// WRITEs at once never hold more than the budget, every request is still answered with the
/// right bytes, and a request larger than the whole budget runs (alone) instead of waiting forever.
@Suite(.serialized, .timeLimit(.minutes(3))) struct NBDServerBudgetTests {
    @Test func manyConnectionsStayWithinTheBudget() throws {
        var random = SeededRandom(seed: 15)
        let bytes = random.bytes(16 << 20)
        let device = MemoryDevice(name: "mem", bytes: bytes, writable: false)
        let spec = NBDExportSpec(name: "m", size: device.size, writable: false)
        let budget = 3 << 20
        let server = try NBDServer(exports: [NBDServedExport(spec: spec, device: device)], listen: .tcp(host: "127.0.0.1", port: 0), memoryBudget: budget)
        defer { server.close() }
        let uri = try #require(server.uri())
        let clients = try (0..<8).map { _ in try NBDClient(uri) }
        defer { for c in clients { try? c.close() } }
        // 64 reads of 1-2 MiB from 8 connections at once, 8 of them at a time on each.
        let reads = 64
        let failures = LockedError()
        let wrong = LockedResults()
        DispatchQueue.concurrentPerform(iterations: reads) { i in
            let length = (1 << 20) + (i * 37_000) % (1 << 20)
            let offset = (i * 997_001) % (bytes.count - length)
            var got = [UInt8](repeating: 0xEE, count: length)
            do {
                try got.withUnsafeMutableBytes { try clients[i % clients.count].read(into: $0, at: UInt64(offset)) }
                if got[...] != bytes[offset..<offset + length] { wrong.set(i, .success([])) }
            } catch {
                failures.set(error)
            }
        }
        #expect(failures.get() == nil, "\(String(describing: failures.get()))")
        #expect((0..<reads).allSatisfy { wrong.get($0) == nil }, "a read returned other bytes than the export's")
        let peak = server.memoryBudget.peakInUse
        #expect(peak <= budget, "the server held \(peak) bytes of requests, over its budget of \(budget)")
        #expect(peak > budget / 2, "the budget was never near full (\(peak) bytes): the test did not load the server")
        // Everything taken was given back once the replies were written.
        for _ in 0..<200 where server.memoryBudget.inUse != 0 { Thread.sleep(forTimeInterval: 0.01) }
        #expect(server.memoryBudget.inUse == 0)
    }

    /// Four nbdcopy at once (4 connections and 64 requests in flight each) against a 2 MiB
    /// budget: every copy is the export's bytes, and the server never held more than the budget.
    @Test func parallelNbdcopyStayWithinTheBudget() throws {
        guard Tools.require("nbdcopy") else { return }
        let dir = try TemporaryDirectory("ferry-nbd-budget")
        var random = SeededRandom(seed: 17)
        let bytes = random.bytes(24 << 20)
        let device = MemoryDevice(name: "mem", bytes: bytes, writable: false)
        let spec = NBDExportSpec(name: "", size: device.size, writable: false)
        let budget = 2 << 20
        let server = try NBDServer(exports: [NBDServedExport(spec: spec, device: device)], listen: .unix(path: dir.file("b.sock")), memoryBudget: budget)
        defer { server.close() }
        let uri = try #require(server.uri())
        let failures = LockedError()
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            do {
                let run = try Tools.run("nbdcopy", [uri, dir.file("copy\(i).raw")], limit: 60)
                if run.status != 0 { failures.set(NBDError(.connection, "nbdcopy", run.stderr)) }
            } catch {
                failures.set(error)
            }
        }
        #expect(failures.get() == nil, "\(String(describing: failures.get()))")
        for i in 0..<4 {
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("copy\(i).raw")))) == bytes, "copy \(i) differs")
        }
        #expect(server.memoryBudget.peakInUse <= budget)
        #expect(server.memoryBudget.peakInUse > budget / 2)
    }

    @Test func aRequestLargerThanTheBudgetRunsAlone() throws {
        var random = SeededRandom(seed: 16)
        let bytes = random.bytes(12 << 20)
        let device = MemoryDevice(name: "mem", bytes: [UInt8](repeating: 0, count: bytes.count), writable: true)
        let spec = NBDExportSpec(name: "w", size: device.size, writable: true)
        let budget = 1 << 20
        let server = try NBDServer(exports: [NBDServedExport(spec: spec, device: device)], listen: .tcp(host: "127.0.0.1", port: 0), memoryBudget: budget)
        defer { server.close() }
        let uri = try #require(server.uri())
        let writers = try (0..<3).map { _ in try NBDClient(uri, writable: true) }
        defer { for c in writers { try? c.close() } }
        // Three connections write 4 MiB each (one request apiece, each over the 1 MiB budget) at once.
        let failures = LockedError()
        DispatchQueue.concurrentPerform(iterations: writers.count) { i in
            let part = 4 << 20
            do {
                try bytes[i * part..<(i + 1) * part].withUnsafeBytes { try writers[i].write($0, at: UInt64(i * part)) }
            } catch {
                failures.set(error)
            }
        }
        #expect(failures.get() == nil, "\(String(describing: failures.get()))")
        var back = [UInt8](repeating: 0xEE, count: bytes.count)
        try back.withUnsafeMutableBytes { try writers[0].read(into: $0, at: 0) }
        #expect(back == bytes)
        #expect(server.memoryBudget.peakInUse <= budget)
        #expect(server.memoryBudget.peakInUse == budget, "each request over the budget takes all of it")
    }

    @Test func theBudgetServesWaitersInOrder() {
        let budget = NBDMemoryBudget(capacity: 10)
        let order = LockedResults()
        #expect(budget.acquire(6) { Issue.record("granted at once, not queued") })
        #expect(!budget.acquire(6) { order.set(0, .success([])) })
        // A small request behind a waiting big one waits too (first come, first served).
        #expect(!budget.acquire(1) { order.set(1, .success([])) })
        #expect(budget.cost(50) == 10)
        budget.release(6)
        #expect(order.get(0) != nil && order.get(1) != nil)
        #expect(budget.inUse == 7)
        budget.release(6)
        budget.release(1)
        #expect(budget.inUse == 0)
        #expect(budget.peakInUse == 7)
    }
}
