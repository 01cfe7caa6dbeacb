/// What `ferry inspect` found on the guest's system disk, reduced to what the decision table
/// reads. FerryCommands fills it from FerryGuest's `InspectionReport` (so this module needs
/// no disk code); nil fields are unknown, not false.
public struct GuestFacts: Sendable, Equatable, Codable {
    public enum OS: String, Sendable, Codable { case windows, linux, unknown }

    public var os: OS
    /// "5.0", "5.2", "10.0"…
    public var windowsVersion: String?
    public var productName: String?
    /// "x86" or "x64".
    public var architecture: String?
    public var hal: String?
    public var halMultiprocessor: Bool?
    public var halACPI: Bool?
    public var rtcLocalTime: Bool?
    /// "mbr", "gpt" or "none".
    public var partitionTable: String?
    public var efiSystemPartition: Bool
    /// Inspect's verdicts by id ("boot-ide", "boot-virtio-blk", "boot-virtio-scsi", "rtc", …): ok or not.
    public var verdicts: [String: Bool]
    /// Inspect's fix line for the verdicts that are not ok.
    public var fixes: [String: String]

    public init(
        os: OS, windowsVersion: String? = nil, productName: String? = nil, architecture: String? = nil, hal: String? = nil,
        halMultiprocessor: Bool? = nil, halACPI: Bool? = nil, rtcLocalTime: Bool? = nil, partitionTable: String? = nil,
        efiSystemPartition: Bool = false, verdicts: [String: Bool] = [:], fixes: [String: String] = [:]
    ) {
        self.os = os
        self.windowsVersion = windowsVersion
        self.productName = productName
        self.architecture = architecture
        self.hal = hal
        self.halMultiprocessor = halMultiprocessor
        self.halACPI = halACPI
        self.rtcLocalTime = rtcLocalTime
        self.partitionTable = partitionTable
        self.efiSystemPartition = efiSystemPartition
        self.verdicts = verdicts
        self.fixes = fixes
    }
}
