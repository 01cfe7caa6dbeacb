@testable import FerryTarget
import Foundation

/// The .vmx fixtures of this directory (Fixtures/README.md) and the golden outputs beside them.
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static let all = [
        "esxi5-win2003", "esxi6-winxp", "esxi65-win2000", "esxi7-win2008", "esxi8-win2019-efi", "esxi7-ubuntu-snapshot",
        "workstation17-debian-efi",
    ]

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(name + ".vmx")))
    }

    static func machine(_ name: String) throws -> SourceMachine { try SourceMachine(vmxBytes: bytes(name)) }

    static func vmx(_ text: String) throws -> SourceMachine { try SourceMachine(vmxBytes: Array(text.utf8)) }
}
