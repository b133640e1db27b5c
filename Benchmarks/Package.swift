// swift-tools-version: 6.1
// SPDX-License-Identifier: Apache-2.0
// Micro-benchmarks of smime-milter's hot paths (ordo-one/benchmark). A separate package so that
// `make test` never builds the benchmark framework. Run: swift package benchmark (or make bench).
import PackageDescription

let package = Package(
    name: "smime-milter-benchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(name: "smime-milter", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MIME", package: "smime-milter"),
                .product(name: "SMIME", package: "smime-milter"),
            ],
            path: "Benchmarks/HotPaths",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
