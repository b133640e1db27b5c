// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import SMIME

/// Agreement with real mail written by other projects (`../shared/corpus`).
///
/// For every row whose source states an expectation: valid → pass, invalid/tampered → not pass,
/// partial (a signed part wrapped with unsigned ones, as mailing lists do) → policy with the
/// partial reason ("only part N is signed; unsigned content: ..."), encrypted rows → reported
/// as encrypted; rows in `Tests/known-deviations.tsv` must disagree
/// (so a stale entry is noticed). SHA-1 and 512-bit rows are checked for agreement with
/// `allowWeakAlgorithms` (the cryptography is what the source judged), and separately shown to
/// be `policy` with the default options. Rows whose chain OpenSSL could only verify at the
/// signing time (`attime=`), and rows without a trust anchor (whose own certificates are
/// pinned), are validated at the message's signingTime.
///
/// With `WRITE_CORPUS_TABLE=1` in the environment the table is written to
/// `docs/verification-corpus.md`.
@Suite("Corpus agreement")
struct CorpusAgreementTests {
    struct Outcome {
        let row: CorpusRow
        let weakAllowed: VerificationReport
        let defaults: VerificationReport
        let agrees: Bool
        let validatedAt: String
    }

    static func run(_ row: CorpusRow) throws -> Outcome {
        let message = try Corpus.bytes(row)
        let trust = row.isEnveloped ? try TrustStore(anchors: [Corpus.root + "/anchors/comm-central/TestCA.pem"])
                                    : try Corpus.trust(for: row, message: message)
        let lenient = MessageVerifier(trust: trust, options: VerificationOptions(allowWeakAlgorithms: true))
        let strict = MessageVerifier(trust: trust)
        let now = Date()
        var time = now
        var validatedAt = "now"
        if row.needsSigningTime || row.trustAnchor.isEmpty {
            if let signed = lenient.verify(message: message, at: now).signingTime {
                time = signed
                validatedAt = "signing time"
            } else if let date = Corpus.dateField(message) {
                time = date
                validatedAt = "Date field (no signingTime)"
            }
        }
        let weakAllowed = lenient.verify(message: message, at: time)
        let defaults = strict.verify(message: message, at: time)
        let agrees: Bool
        if row.isEnveloped {
            agrees = weakAllowed.isEncrypted && weakAllowed.result == .none
        } else if row.expected == "partial" {
            agrees = weakAllowed.result == .policy && weakAllowed.isPartialSignature
                && weakAllowed.reason?.hasPrefix("only part ") == true
        } else if row.expected == "valid" {
            agrees = weakAllowed.result == .pass
        } else {
            agrees = weakAllowed.result != .pass
        }
        return Outcome(row: row, weakAllowed: weakAllowed, defaults: defaults, agrees: agrees, validatedAt: validatedAt)
    }

    static func judgedRows() throws -> [CorpusRow] {
        try Corpus.rows().filter { ["valid", "invalid", "tampered", "partial"].contains($0.expected) }
    }

    @Test func everyJudgedRowAgreesOrIsAKnownDeviation() throws {
        let rows = try Self.judgedRows()
        #expect(rows.count > 90, "corpus manifest not found or shrunk: \(rows.count) rows")
        let deviations = try Corpus.deviations()
        var outcomes: [Outcome] = []
        for row in rows {
            let outcome = try Self.run(row)
            outcomes.append(outcome)
            if let reason = deviations[row.file] {
                #expect(!outcome.agrees, "\(row.file) is listed as a deviation (\(reason)) but now agrees")
            } else {
                #expect(outcome.agrees, "\(row.file): expected \(row.expected), got \(outcome.weakAllowed.result) (\(outcome.weakAllowed.reason ?? ""))")
            }
            // Every non-pass carries a reason in plain words.
            if outcome.weakAllowed.result != .pass {
                #expect(!(outcome.weakAllowed.reason ?? "").isEmpty, "\(row.file): no reason")
            }
        }
        for file in deviations.keys {
            #expect(rows.contains { $0.file == file }, "known deviation \(file) is not a judged corpus row")
        }
        if ProcessInfo.processInfo.environment["WRITE_CORPUS_TABLE"] == "1" {
            try Self.table(outcomes, deviations: deviations)
                .write(toFile: TestPKI.repositoryRoot + "/docs/verification-corpus.md", atomically: true, encoding: .utf8)
        }
    }

    /// With default options, a signature that only passes because weak algorithms are allowed
    /// is `policy`, and the reason names the weakness.
    @Test func weakRowsArePolicyByDefault() throws {
        var checked = 0
        for row in try Self.judgedRows() where !row.isEnveloped && row.expected == "valid" {
            let outcome = try Self.run(row)
            guard outcome.weakAllowed.result == .pass else { continue }
            if row.digest == "sha1" || row.file.hasSuffix("shortKey.eml") {
                checked += 1
                #expect(outcome.defaults.result == .policy, "\(row.file): \(outcome.defaults.result)")
                let reason = outcome.defaults.reason ?? ""
                #expect(reason.contains("SHA-1") || reason.contains("RSA-"), "\(row.file): \(reason)")
            } else if !row.digest.isEmpty {
                #expect(outcome.defaults.result == .pass, "\(row.file): \(outcome.defaults.reason ?? "")")
            }
        }
        #expect(checked > 10)
    }

    /// The list-wrapped rows: policy by default, naming the footer added after the signed
    /// part; with `PartialSignatures pass` they pass, as a signature over the message would.
    @Test func partialRowsPassOnlyWhenPartialSignaturesPass() throws {
        let rows = try Self.judgedRows().filter { $0.expected == "partial" }
        #expect(rows.count == 2)
        for row in rows {
            let message = try Corpus.bytes(row)
            let trust = try Corpus.trust(for: row, message: message)
            var options = VerificationOptions()
            let strict = MessageVerifier(trust: trust, options: options).verify(message: message, at: Date())
            #expect(strict.result == .policy, "\(row.file): \(strict.result)")
            #expect(strict.partial?.footers.isEmpty == false, "\(row.file): no footer named: \(strict.reason ?? "")")
            #expect(strict.reason?.contains("after it") == true, "\(row.file): \(strict.reason ?? "")")
            options.partialSignatures = .pass
            let lenient = MessageVerifier(trust: trust, options: options).verify(message: message, at: Date())
            #expect(lenient.result == .pass, "\(row.file): \(lenient.reason ?? "")")
            #expect(lenient.partial != nil && !lenient.isPartialSignature)
        }
    }

    /// CVE-2018-18509: the displayed part is what counts, never the p7s's own eContent.
    @Test func mismatchedEContentNeverPasses() throws {
        let rows = try Corpus.rows().filter { $0.file.hasSuffix(".mismatch-econtent.eml") }
        #expect(rows.count == 4)
        for row in rows {
            let report = try Self.run(row).weakAllowed
            #expect(report.result == .fail, "\(row.file): \(report.result)")
        }
    }

    static func table(_ outcomes: [Outcome], deviations: [String: String]) -> String {
        let agreeing = outcomes.filter(\.agrees).count
        var lines = [
            "# Verification corpus agreement",
            "",
            "Generated by `CorpusAgreementTests` (`WRITE_CORPUS_TABLE=1 swift test --filter CorpusAgreement`)",
            "over `../shared/corpus/MANIFEST.tsv`: every row whose source project states an expectation",
            "(valid, invalid, tampered, partial). *ours* is the result with `AllowWeakAlgorithms yes` (the",
            "agreement column), *default* the result with the default options (SHA-1 and short RSA",
            "keys are `policy`). Partial rows (a signed part wrapped with unsigned ones, as mailing lists",
            "do) must be `policy` naming the unsigned parts (`PartialSignatures pass` lets them pass).",
            "Encrypted rows must be reported as encrypted (`none`). Rows without a",
            "trust anchor in the corpus are checked against the certificates they carry (pinned), and",
            "those and the rows OpenSSL could only verify with `attime=` are validated at the",
            "message's signing time (or, without a signingTime attribute, its Date field).",
            "",
            "Agreement: \(agreeing) of \(outcomes.count) rows; known deviations (`Tests/known-deviations.tsv`): \(deviations.count).",
            "",
            "| # | row | expected | ours | default | validated at | agrees | reason |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for (index, o) in outcomes.enumerated() {
            let ours = o.weakAllowed.isEncrypted ? "none (encrypted)" : o.weakAllowed.result.rawValue
            var reason = o.weakAllowed.reason ?? ""
            if o.defaults.result != o.weakAllowed.result, let strict = o.defaults.reason { reason += (reason.isEmpty ? "" : "; ") + "default: " + strict }
            if let deviation = deviations[o.row.file] { reason += " — known deviation: " + deviation }
            let cells = ["\(index + 1)", "`\(o.row.file)`", o.row.expected, ours, o.defaults.result.rawValue,
                         o.validatedAt, o.agrees ? "yes" : "**no**", reason.replacingOccurrences(of: "|", with: "\\|")]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
