// swift-tools-version: 6.0
// SPDX-License-Identifier: Apache-2.0
// smime-milter: an S/MIME signing and verifying milter for Postfix and Sendmail.
//
// Module layering (each depends only on the ones above it):
//   MIME    pure Swift: parse, canonicalise, encode (no OpenSSL, no libmilter)
//   SMIME   S/MIME over OpenSSL 3: identities, CMS sign and verify
//   Policy  configuration, tables and the per-message decision; testable without an MTA
//   Milter  thin libmilter binding: callbacks, per-connection state, sockets, signals
//   RecipientStoreSQLite  the embedded (GRDB/SQLite) recipient-certificate store
//   RecipientStorePostgreSQL  the shared (libpq/PostgreSQL) store for several gateways
//   smime-milter  the executable: command line, logging
import PackageDescription

let package = Package(
    name: "smime-milter",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "smime-milter", targets: ["smime-milter"]),
        .executable(name: "milter-load", targets: ["milter-load"]),
        // For the separate Benchmarks/ and Fuzz/ packages (micro-benchmarks, libFuzzer targets).
        .library(name: "MIME", targets: ["MIME"]),
        .library(name: "SMIME", targets: ["SMIME"]),
        .library(name: "Policy", targets: ["Policy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        // The embedded recipient-certificate store (RecipientStoreSQLite only); see docs/encryption.md.
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CMilter",
            pkgConfig: "milter",
            providers: [.apt(["libmilter-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // The PKCS#11 header (p11-kit's), for making keys on a token (NewKeysOn).
        .systemLibrary(
            name: "CPKCS11",
            pkgConfig: "p11-kit-1",
            providers: [.apt(["libp11-kit-dev"])]
        ),
        .systemLibrary(
            name: "CLDAP",
            pkgConfig: "ldap",
            providers: [.apt(["libldap-dev"])]
        ),
        // libpq (blocking, multi-host, LISTEN/NOTIFY, TLS through OpenSSL); see docs/cluster.md.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(name: "MIME"),
        .target(name: "SMIME", dependencies: ["MIME", "COpenSSL", "CPKCS11"]),
        .target(name: "Policy", dependencies: ["MIME", "SMIME"]),
        .target(name: "Milter", dependencies: ["Policy", "MIME", "CMilter"]),
        // The SQLite implementation of Policy's RecipientCertificateStore.
        .target(name: "RecipientStoreSQLite", dependencies: [
            "Policy", "SMIME", .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // The PostgreSQL implementation of the same protocol, shared by several gateways.
        .target(name: "RecipientStorePostgreSQL", dependencies: ["Policy", "SMIME", "CLibPQ"]),
        .executableTarget(
            name: "smime-milter",
            dependencies: [
                "Policy", "Milter", "SMIME", "MIME", "RecipientStoreSQLite", "RecipientStorePostgreSQL", "CLDAP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Load generator for the milter protocol (make bench, Tests/integration/test_load.py).
        .executableTarget(
            name: "milter-load",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(name: "MIMETests", dependencies: ["MIME"]),
        .testTarget(name: "SMIMETests", dependencies: ["SMIME", "MIME"]),
        .testTarget(name: "PolicyTests", dependencies: ["Policy", "SMIME", "MIME"]),
        // The libmilter binding's per-connection logic against a recording EditSink.
        .testTarget(name: "MilterTests", dependencies: ["Milter", "Policy", "SMIME", "MIME"]),
        // The executable's pieces (process state, log line).
        .testTarget(name: "SMIMEMilterToolTests", dependencies: ["smime-milter", "Policy", "MIME"]),
        // Writes to a store until killed (the kill -9 test of RecipientStoreTests).
        .executableTarget(name: "recipient-store-stress", dependencies: ["RecipientStoreSQLite", "Policy"]),
        .testTarget(name: "RecipientStoreTests", dependencies: ["RecipientStoreSQLite", "Policy", "SMIME"]),
        .testTarget(name: "RecipientStorePostgreSQLTests", dependencies: ["RecipientStorePostgreSQL", "Policy", "SMIME"]),
    ],
    swiftLanguageModes: [.v6]
)
