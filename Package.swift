// swift-tools-version: 6.1
import PackageDescription

/// Settings every target shares: Swift 6 language mode, strict memory safety off
/// (we deal in raw buffers on purpose), upcoming features that catch mistakes early.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// `ferry --version`: Scripts/release.sh sets FERRY_COMMIT (and FERRY_VERSION when given one);
/// a plain `swift build` gets the version in Sources/CFerryLaunch/build_info.c and no commit.
let buildInfo: [CSetting] = ["FERRY_VERSION", "FERRY_COMMIT"].compactMap { name in
    guard let value = Context.environment[name], !value.isEmpty,
        value.allSatisfy({ $0.isLetter || $0.isNumber || ".-+_".contains($0) })
    else { return nil }
    return .define(name, to: "\"\(value)\"")
}

let package = Package(
    name: "ferry",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ferry", targets: ["ferry"]),
        .executable(name: "ferry-bench", targets: ["ferry-bench"]),
        .library(name: "FerryCopy", targets: ["FerryCopy"]),
        // The parsers and their fuzz entry points, for the libFuzzer package in FuzzTesting/.
        .library(
            name: "FerryFuzzEntries",
            targets: ["FerryBinary", "FerryDisk", "FerryFormats", "FerryPartitions", "FerryNTFS", "FerryRegistry", "FerryProtocol", "FerryTarget", "FerryNBD"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // C shims: ioctls, fallocate, zero detection, dlopen'd codecs.
        .target(name: "CFerryShims", linkerSettings: [.linkedLibrary("dl")]),

        // The process before Swift runs: argv without /proc (issue 17), the build's version line.
        .target(name: "CFerryLaunch", cSettings: buildInfo),

        // Byte-level parsing helpers, errors, endianness. No dependencies.
        .target(name: "FerryBinary", swiftSettings: swiftSettings),

        // The BlockDevice protocol and the local endpoints (files, block devices, pipes, null).
        .target(
            name: "FerryDisk",
            dependencies: [
                "FerryBinary", "CFerryShims",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings),

        // Image formats (VMDK, qcow2, VHD/VHDX, OVA) as BlockDevices.
        // zlib (linked) and zstd (dlopen'd) for compressed qcow2 clusters and VMDK grains.
        .target(name: "CFerryZlib", linkerSettings: [.linkedLibrary("z"), .linkedLibrary("dl")]),
        .target(name: "FerryFormats", dependencies: ["FerryBinary", "FerryDisk", "CFerryZlib"], swiftSettings: swiftSettings),

        // The copy engine: extents, zero detection, parallel positional I/O, the disk digest, progress.
        .target(
            name: "FerryCopy",
            dependencies: [
                "FerryDisk", "FerryFormats", "CFerryShims",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),

        // Guest inspection: partition tables, file systems, NTFS, registry, Windows facts.
        .target(name: "FerryPartitions", dependencies: ["FerryBinary", "FerryDisk"], swiftSettings: swiftSettings),
        .target(name: "FerryNTFS", dependencies: ["FerryBinary", "FerryDisk"], swiftSettings: swiftSettings),
        .target(name: "FerryRegistry", dependencies: ["FerryBinary"], swiftSettings: swiftSettings),
        .target(
            name: "FerryGuest",
            dependencies: ["FerryBinary", "FerryDisk", "FerryFormats", "FerryPartitions", "FerryNTFS", "FerryRegistry"],
            swiftSettings: swiftSettings),
        // Offline fixes of a copied guest (ferry fix): plans from inspect's facts, hive and NTFS writes, undo files.
        .target(
            name: "FerryFix",
            dependencies: [
                "FerryBinary", "FerryDisk", "FerryPartitions", "FerryNTFS", "FerryRegistry", "FerryGuest",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings),

        // The target VM: the .vmx reader, the machine model, the decision table and the
        // Ganeti / libvirt / Proxmox / QEMU renderers. Pure values, no dependencies.
        .target(name: "FerryTarget", dependencies: ["FerryBinary"], swiftSettings: swiftSettings),

        // Network transfer: wire messages and state machines (NIOCore only), then the NIO/TLS edge.
        .target(
            name: "FerryProtocol",
            dependencies: ["FerryBinary", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings),
        .target(
            name: "FerryTransfer",
            dependencies: [
                "FerryProtocol", "FerryDisk", "FerryFormats", "FerryCopy", "CFerryShims",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                // Already built for X509; gives scrypt for the pairing-code key stretch.
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swiftSettings),

        // ESXi as a source (issue 13): ranged HTTPS reads of /folder files, the SOAP session, the VM list.
        .target(
            name: "FerryESXi",
            dependencies: [
                "FerryBinary", "FerryDisk", "FerryFormats", "FerryTarget",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),

        // NBD client (nbd:// URIs as BlockDevices) and server (ferry serve): wire codec, NIO edge.
        .target(
            name: "FerryNBD",
            dependencies: [
                "FerryBinary", "FerryDisk", "FerryFormats",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // nbds:// and ferry serve --tls-certificates (NBD_OPT_STARTTLS).
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),

        // Commands: ArgumentParser glue over the library modules.
        .target(
            name: "FerryCommands",
            dependencies: [
                "FerryDisk", "FerryFormats", "FerryCopy", "FerryGuest", "FerryFix", "FerryNTFS", "FerryRegistry", "FerryProtocol", "FerryTransfer",
                "FerryTarget", "FerryESXi", "FerryNBD", "CFerryLaunch", "CFerryShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(name: "ferry", dependencies: ["FerryCommands", "CFerryLaunch"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "ferry-bench",
            dependencies: ["FerryCopy", "FerryDisk", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/ferry-bench",
            swiftSettings: swiftSettings),

        // Test support: builders for fixtures, temp dirs, running external tools.
        .target(name: "FerryTestSupport", dependencies: ["FerryBinary", "FerryDisk"], path: "Tests/FerryTestSupport", swiftSettings: swiftSettings),

        .testTarget(name: "FerryBinaryTests", dependencies: ["FerryBinary", "FerryTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "FerryDiskTests", dependencies: ["FerryDisk", "FerryTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "FerryCopyTests",
            dependencies: [
                "FerryCopy", "FerryDisk", "FerryBinary", "FerryTestSupport", .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(name: "FerryFormatsTests", dependencies: ["FerryFormats", "FerryCopy", "FerryTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "FerryGuestTests",
            dependencies: ["FerryGuest", "FerryFix", "FerryPartitions", "FerryNTFS", "FerryRegistry", "FerryTestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FerryTransferTests",
            dependencies: [
                "FerryProtocol", "FerryTransfer", "FerryCopy", "FerryDisk", "FerryTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FerryTargetTests", dependencies: ["FerryTarget", "FerryTestSupport"],
            // .vmx fixtures, their golden outputs and the Ganeti oracle script: read by path.
            exclude: ["Fixtures", "Oracles"], swiftSettings: swiftSettings),
        .testTarget(
            name: "FerryESXiTests",
            dependencies: ["FerryESXi", "FerryFormats", "FerryDisk", "FerryBinary", "FerryTestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FerryNBDTests",
            dependencies: [
                "FerryNBD", "FerryDisk", "FerryFormats", "FerryTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FerryCommandsTests",
            dependencies: ["FerryCommands", "FerryTarget", "FerryTestSupport"],
            swiftSettings: swiftSettings),
    ]
)
