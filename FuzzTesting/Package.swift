// swift-tools-version:5.3
// Tools version 5.3 on purpose: a `.target` whose main.swift defines `LLVMFuzzerTestOneInput`
// builds as an executable whose `main` is libFuzzer's. Newer tools versions rename the module's
// main for testability, and the fuzzer then either fails to link or fuzzes nothing
// (see README.md). Build: ./run.sh, or
//   swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
import PackageDescription

let entries: Target.Dependency = .product(name: "FerryFuzzEntries", package: "ferry")

/// One fuzz target per parser; each main.swift calls one entry point of the main package.
let targets = [
    "FuzzQCOW2", "FuzzVMDK", "FuzzVMDKDescriptor", "FuzzVHD", "FuzzVHDX", "FuzzOVA",
    "FuzzPartitions", "FuzzNTFS", "FuzzRegistry", "FuzzRegistryEdit", "FuzzJournal", "FuzzVMX", "FuzzDelta", "FuzzNBD", "FuzzXML",
]

let package = Package(
    name: "FerryFuzzTesting",
    dependencies: [
        .package(name: "ferry", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: targets.map { .target(name: $0, dependencies: [entries]) } + [
        .target(
            name: "FuzzFrame",
            dependencies: [
                entries,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]),
    ]
)
