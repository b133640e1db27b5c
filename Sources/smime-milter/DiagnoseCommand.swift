import ArgumentParser
import Foundation
import Policy
import SMIME

/// `smime-milter diagnose`: the verification result of stored messages and, when a signature is
/// broken, what broke it (the signed messageDigest used as an oracle, see docs/diagnosis.md).
struct DiagnoseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Say what broke the S/MIME signature of stored messages; exit 0 when every one passes.",
        discussion: """
            Prints for each file the line `verify` prints (FILE: smime=RESULT (reason) ...) and, when \
            a multipart/signed signature does not match its content, the diagnosis: the cause, \
            whether it is confirmed (a reconstruction of the original bytes matches the signed \
            digest), likely or unknown, what was found, the first line of a found footer, and the \
            work spent. A passing message whose stored copy has LF line ends gets a note. \
            Exit status: 0 when every file passed, 1 otherwise, 2 when the trust anchors, the \
            configuration or a file cannot be read.
            """)

    @Option(name: .shortAndLong, help: "The configuration file (for TrustAnchors).")
    var config: String?

    @Option(help: "A PEM file or a directory of PEM files with the trusted CA certificates.")
    var trust: [String] = []

    @Option(name: .customLong("crl-dir"), help: "A directory of CRLs (PEM or DER).")
    var crlDir: String?

    @Option(help: "Validate certificates as of this time (RFC 3339), or 'signing-time'.")
    var at: String?

    @Flag(name: .customLong("allow-weak"), help: "Accept MD5/SHA-1 and RSA keys under 2048 bits.")
    var allowWeak = false

    @Option(name: .customLong("max-digests"), help: "At most this many digest computations per message.")
    var maxDigests: Int = DiagnosisOptions().maxDigestComputations

    @Option(name: .customLong("time-budget-ms"), help: "At most this many milliseconds of diagnosis per message.")
    var timeBudgetMilliseconds: Int = 200

    @Argument(help: "Message files (.eml).")
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one message file") }
        if let at, at != "signing-time", VerifyCommand.parseTime(at) == nil {
            throw ValidationError("--at: not an RFC 3339 time: \(at)")
        }
        if maxDigests < 0 || timeBudgetMilliseconds < 0 { throw ValidationError("budgets cannot be negative") }
    }

    func run() throws {
        let store: TrustStore
        do {
            store = try loadTrust()
        } catch {
            FileHandle.standardError.write(Data("smime-milter diagnose: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let budget = DiagnosisOptions(maxDigestComputations: maxDigests, timeBudget: .milliseconds(timeBudgetMilliseconds))
        let verifier = MessageVerifier(trust: store, options: VerificationOptions(allowWeakAlgorithms: allowWeak,
                                                                                  diagnosis: budget))
        var allPassed = true
        var unreadable = false
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                print("\(file): cannot read the file")
                unreadable = true
                continue
            }
            let bytes = [UInt8](data)
            var report = verifier.verifyAndDiagnose(message: bytes, at: at.flatMap(VerifyCommand.parseTime) ?? Date())
            if at == "signing-time", let signed = report.signingTime {
                report = verifier.verifyAndDiagnose(message: bytes, at: signed)
            }
            print("\(file): \(VerifyCommand.describe(report))")
            for line in Self.diagnosisLines(report) { print("  " + line) }
            if report.result != .pass { allPassed = false }
        }
        if unreadable { throw ExitCode(2) }
        if !allPassed { throw ExitCode(1) }
    }

    /// The diagnosis in plain words, one fact per line.
    static func diagnosisLines(_ report: VerificationReport) -> [String] {
        guard let diagnosis = report.diagnosis else {
            if report.result == .fail, report.reason?.contains("CVE-2018-18509") == true {
                return ["diagnosis: none (the signature carries other content than the signed part shows: an attack, not transport damage)"]
            }
            return []
        }
        let isCause = report.reason?.hasPrefix("body altered") == true
        var lines = [(isCause ? "diagnosis: " : "note: ") + diagnosis.description,
                     "detail: \(diagnosis.detail)"]
        if let footer = diagnosis.footer { lines.append("footer: \"\(footer)\"") }
        lines.append("digest computations: \(diagnosis.digestComputations)")
        return lines
    }

    private func loadTrust() throws -> TrustStore {
        var anchors = trust
        if anchors.isEmpty {
            guard let config else {
                throw ValidationError("name the trust anchors with --trust or a configuration with TrustAnchors (--config)")
            }
            let configuration = try ConfigurationParser.load(path: config)
            guard let configured = configuration.trustAnchors else {
                throw ValidationError("\(config) sets no TrustAnchors; use --trust")
            }
            anchors = [configured]
        }
        return try TrustStore(anchors: anchors, crlDirectory: crlDir)
    }
}
