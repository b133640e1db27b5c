// swift-tools-version: 6.0
// SPDX-License-Identifier: Apache-2.0
// libFuzzer targets over smime-milter's parsers and the inbound verifier. A separate package so
// that the main package's `swift build` and `swift test` never build them; they only link with
// the fuzzer runtime. Build and run with `make fuzz` / `make fuzz-smoke` (fuzz.mk), which use
//     swift build --package-path Fuzz --scratch-path .build-fuzz -c release \
//         -Xswiftc -sanitize=fuzzer,address
import PackageDescription

// Each target is an executable whose entry point `<module>_main` hands over to libFuzzer's driver.
let fuzzerSettings: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

func fuzzTarget(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport"] + dependencies, swiftSettings: fuzzerSettings)
}

let mime: Target.Dependency = .product(name: "MIME", package: "smime-milter")
let smime: Target.Dependency = .product(name: "SMIME", package: "smime-milter")
let policy: Target.Dependency = .product(name: "Policy", package: "smime-milter")

let package = Package(
    name: "smime-milter-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "smime-milter", path: ".."),
    ],
    targets: [
        .target(name: "FuzzSupport"),
        fuzzTarget("FuzzMIME", [mime]),
        fuzzTarget("FuzzSignable", [mime]),
        fuzzTarget("FuzzAddress", [mime]),
        fuzzTarget("FuzzVerify", [mime, smime, policy]),
        fuzzTarget("FuzzConfig", [policy]),
        fuzzTarget("FuzzDecrypt", [mime, smime]),
    ],
    swiftLanguageModes: [.v6]
)
