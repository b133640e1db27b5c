// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import MIME
import Policy
import SMIME

/// The options and the per-file loop that `verify` and `diagnose` share: where the trust
/// anchors and CRLs come from, the validation time, weak algorithms, and the files.
struct VerificationArguments: ParsableArguments {
    @Option(name: .shortAndLong, help: "The configuration file (for TrustAnchors, CRLDir, AllowWeakAlgorithms).")
    var config: String?

    @Option(help: "A PEM file or a directory of PEM files with the trusted CA certificates.")
    var trust: [String] = []

    @Option(name: .customLong("crl-dir"), help: "A directory of CRLs (PEM or DER).")
    var crlDir: String?

    @Option(help: "Validate certificates as of this time (RFC 3339, e.g. 2024-05-01T12:00:00Z), or 'signing-time' to use each message's signingTime attribute (a diagnostic for archived mail).")
    var at: String?

    @Flag(name: .customLong("allow-weak"), help: "Accept MD5/SHA-1 and RSA keys under 2048 bits.")
    var allowWeak = false

    @Argument(help: "Message files (.eml).")
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one message file") }
        if let at, at != "signing-time", Self.parseTime(at) == nil {
            throw ValidationError("--at: not an RFC 3339 time: \(at)")
        }
    }

    /// The verification policy the milter would run, built from the options and the
    /// configuration (or the defaults without one); exits 2 when it cannot be built. With
    /// `diagnosing`, its verifier also notes a stored copy that differs from what was signed.
    func makePolicy(command: String, diagnosis: DiagnosisOptions? = nil,
                    diagnosing: Bool = false) throws -> VerificationPolicy {
        do {
            var configuration = try config.map { try ConfigurationParser.load(path: $0) } ?? Configuration()
            var anchors = trust
            if anchors.isEmpty {
                guard let config else {
                    throw ValidationError("name the trust anchors with --trust or a configuration with TrustAnchors (--config)")
                }
                guard let configured = configuration.trustAnchors else {
                    throw ValidationError("\(config) sets no TrustAnchors; use --trust")
                }
                anchors = [configured]
            }
            if allowWeak { configuration.allowWeakAlgorithms = true }
            let store = try TrustStore(anchors: anchors, crlDirectory: crlDir ?? configuration.crlDir)
            let verifier = MessageVerifier(trust: store, options: configuration.verificationOptions(diagnosis: diagnosis),
                                           revocation: RevocationRuntime.checker(configuration, trust: store))
            return VerificationPolicy(configuration: configuration,
                                      verifier: diagnosing ? DiagnosingVerifier(base: verifier) as any SignatureVerifier : verifier)
        } catch {
            FileHandle.standardError.write(Data("smime-milter \(command): \(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    /// Runs the policy's verdict on every file at the requested time (again at the signing
    /// time with `--at signing-time`): the same path the milter takes, so the line printed is
    /// the result the milter writes. Prints it and whatever `extra` adds, and exits 0 when
    /// every file passed, 1 otherwise, 2 when a file could not be read.
    func forEachFile(_ policy: VerificationPolicy, extra: (VerificationReport) -> [String] = { _ in [] }) throws {
        var allPassed = true
        var unreadable = false
        let splitter = MessageVerifier(trust: try TrustStore.empty(), options: policy.configuration.verificationOptions())
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                print("\(file): cannot read the file")
                unreadable = true
                continue
            }
            var report: VerificationReport
            do {
                let stored = try splitter.storedMessage([UInt8](data))
                report = policy.verdict(fields: stored.fields, body: stored.body, now: at.flatMap(Self.parseTime) ?? Date()).report
                if at == "signing-time", let signed = report.signingTime {
                    report = policy.verdict(fields: stored.fields, body: stored.body, now: signed).report
                }
            } catch {
                report = MessageVerifier.unprocessable(error)
            }
            print("\(file): \(AuthenticationResults.resultText(for: report))")
            for line in extra(report) { print("  " + line) }
            if report.result != .pass { allPassed = false }
        }
        if unreadable { throw ExitCode(2) }
        if !allPassed { throw ExitCode(1) }
    }

    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}

/// The verifier `diagnose` hands the policy: the real one, plus the note on a stored copy
/// whose line ends differ from what was signed. The result is the same as `MessageVerifier`'s.
struct DiagnosingVerifier: SignatureVerifier {
    let base: MessageVerifier

    func verify(fields: [HeaderField], body: [UInt8], fromAddress: String?, at time: Date) -> VerificationReport {
        base.verifyAndDiagnose(fields: fields, body: body, fromAddress: fromAddress, at: time)
    }
}
