// SPDX-License-Identifier: Apache-2.0
import Foundation
import FuzzSupport
import MIME
import Policy
import SMIME

/// Inbound verification with diagnosis, as the milter and the `diagnose` command run it, and the
/// Authentication-Results value written from the report.
///
/// The trust anchor is the root of the seeds' PKI (Fuzz/Anchors, made by Fuzz/make_seeds.py),
/// plus the corpus anchors when ../shared/corpus is there, and certificates are validated at the
/// seeds' time: valid signatures verify, so mutations reach the digest, the path validation, the
/// signer checks and the diagnosis instead of stopping at "untrusted". LeakSanitizer checks
/// every input: OpenSSL objects must be freed on every path.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    let report = Setup.verifier.verifyAndDiagnose(message: input, at: Setup.time)
    if report.result == .pass, report.reason != nil { fuzzFailure("a pass with a reason: \(report.reason!)") }
    let value = AuthenticationResults.value(authservID: "mx.example.net", report: report)
    // The value goes into the header as it is: a line break must be a fold, and no NUL or CR.
    let scalars = Array(value.unicodeScalars)
    for (index, scalar) in scalars.enumerated() {
        if scalar == "\0" || scalar == "\r" { fuzzFailure("Authentication-Results holds NUL or CR: \(value)") }
        if scalar == "\n", index + 1 >= scalars.count || scalars[index + 1] != "\t" {
            fuzzFailure("Authentication-Results holds a line break that is not a fold: \(value)")
        }
    }
    return 0
}

enum Setup {
    /// Fuzz/, from this file's path (Fuzz/Sources/FuzzVerify/FuzzVerify.swift).
    static let fuzzDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static let time: Date = {
        let path = fuzzDirectory.appendingPathComponent("Anchors/verify-time").path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let seconds = TimeInterval(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { fatalError("cannot read \(path)") }
        return Date(timeIntervalSince1970: seconds)
    }()

    static let verifier: MessageVerifier = {
        var anchors = [fuzzDirectory.appendingPathComponent("Anchors/fuzz-root.pem").path]
        let corpus = fuzzDirectory.deletingLastPathComponent().appendingPathComponent("../shared/corpus/anchors").path
        for name in ["comm-central/TestCA.pem", "bc-java/validator.root.crt.pem", "bc-java/certpath_root.crt.pem"] {
            let path = corpus + "/" + name
            if FileManager.default.fileExists(atPath: path) { anchors.append(path) }
        }
        do {
            let trust = try TrustStore(anchors: anchors)
            // Small bounds keep each input fast; the paths behind them are the same.
            let options = VerificationOptions(limits: MIMELimits(maxDepth: 16, maxParts: 200),
                                              maxCertificates: 20, maxSigners: 4,
                                              diagnosis: DiagnosisOptions(maxDigestComputations: 48))
            return MessageVerifier(trust: trust, options: options)
        } catch {
            fatalError("cannot load the trust anchors \(anchors): \(error)")
        }
    }()
}

@_cdecl("FuzzVerify_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    _ = Setup.verifier
    return runFuzzer(argc, argv, fuzzOneInput)
}
