// SPDX-License-Identifier: Apache-2.0
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

    @OptionGroup var options: VerificationArguments

    @Option(name: .customLong("max-digests"), help: "At most this many digest computations per message.")
    var maxDigests: Int = DiagnosisOptions().maxDigestComputations

    @Option(name: .customLong("time-budget-ms"), help: "At most this many milliseconds of diagnosis per message.")
    var timeBudgetMilliseconds: Int = 200

    func validate() throws {
        if maxDigests < 0 || timeBudgetMilliseconds < 0 { throw ValidationError("budgets cannot be negative") }
    }

    func run() throws {
        let budget = DiagnosisOptions(maxDigestComputations: maxDigests, timeBudget: .milliseconds(timeBudgetMilliseconds))
        let policy = try options.makePolicy(command: "diagnose", diagnosis: budget, diagnosing: true)
        try options.forEachFile(policy, extra: Self.diagnosisLines)
    }

    /// The diagnosis in plain words, one fact per line.
    static func diagnosisLines(_ report: VerificationReport) -> [String] {
        let structure = report.partial.map { partialLines($0, counted: report.isPartialSignature) } ?? []
        return signatureLines(report) + structure
    }

    /// What broke the signature itself (a digest mismatch, the CVE-2018-18509 trick).
    static func signatureLines(_ report: VerificationReport) -> [String] {
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

    /// A signature over one part: which part, and what was added beside it (a list's footer
    /// added after signing is named with its first line).
    static func partialLines(_ partial: PartialSignature, counted: Bool) -> [String] {
        var lines = ["diagnosis: partial signature: only part \(partial.signedSection) is signed"
                     + (counted ? "" : " (not counted against it: PartialSignatures pass, or the signature failed anyway)")]
        for part in partial.unsigned {
            let what: String
            switch part.position {
            case .after: what = "footer part \(part.section) (\(part.mediaType)) added after signing"
            case .before: what = "unsigned part \(part.section) (\(part.mediaType)) before the signed part"
            case .alternative: what = "unsigned alternative part \(part.section) (\(part.mediaType))"
            }
            lines.append(what + (part.firstLine.map { ": \"\($0)\"" } ?? ""))
        }
        return lines
    }
}
