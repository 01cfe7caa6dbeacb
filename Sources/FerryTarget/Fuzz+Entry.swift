/// The entry point of the .vmx fuzz target (`FuzzTesting/Sources/FuzzVMX`) and of the tests
/// that replay its corpus: the bytes are parsed, read as a machine, planned and rendered for
/// every target, so the whole path from hostile text to a command line is covered.
public enum VMXFuzz {
    public static func run(_ bytes: [UInt8]) throws {
        let machine = try SourceMachine(vmxBytes: bytes)
        let plan = Planner.plan(machine: machine, guest: nil, disks: [])
        for target in TargetKind.allCases { _ = target.render(plan) }
    }

    /// True for the errors bad input may end in.
    public static func isExpected(_ error: any Error) -> Bool { error is VMXError }
}
