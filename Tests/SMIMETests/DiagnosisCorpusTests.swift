// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Testing
@testable import SMIME

/// The diagnosis against real mail written by other projects (`../shared/corpus`).
@Suite("Diagnosis: corpus")
struct DiagnosisCorpusTests {
    /// Rows whose outermost layer is multipart/signed (the only form that gets a diagnosis).
    static func detachedRows() throws -> [CorpusRow] {
        try Corpus.rows().filter { $0.kind.hasPrefix("multipart-signed") }
    }

    static func report(_ row: CorpusRow) throws -> VerificationReport {
        let message = try Corpus.bytes(row)
        // No time budget to speak of: a loaded or sanitized run must still find the cause.
        let verifier = MessageVerifier(trust: try Corpus.trust(for: row, message: message),
                                       options: VerificationOptions(allowWeakAlgorithms: true,
                                                                    diagnosis: DiagnosisOptions(timeBudget: .seconds(3_600))))
        let time = Corpus.dateField(message) ?? Date()
        return verifier.verifyAndDiagnose(message: message, at: time)
    }

    /// The first layer's group of `openssl_result`.
    static func firstLayer(_ row: CorpusRow) -> Substring {
        row.openSSLResult.split(separator: "|").first ?? ""
    }

    @Test func signedOverLFIsConfirmedAsLineEnds() throws {
        let rows = try Self.detachedRows().filter { Self.firstLayer($0).contains("REPAIRABLE:LF") }
        #expect(rows.count >= 4)
        for row in rows {
            let report = try Self.report(row)
            #expect(report.result == .fail, "\(row.file): \(report.reason ?? "")")
            #expect(report.diagnosis?.cause == .lineEndsChanged, "\(row.file): \(String(describing: report.diagnosis))")
            #expect(report.diagnosis?.confidence == .confirmed, "\(row.file)")
            #expect(report.reason == "body altered after signing: line ends changed between CRLF and LF (confirmed)", "\(row.file)")
        }
    }

    @Test func outlookForMacStoredWithLFIsALineEndNote() throws {
        let row = try #require(try Corpus.rows().first { $0.file.hasSuffix("3nnn_smime.eml") })
        let report = try Self.report(row)
        // The signature itself is good over the canonical form; the copy differs from it.
        #expect(report.reason?.hasPrefix("body altered") != true, "\(report.reason ?? "")")
        #expect(report.diagnosis?.cause == .lineEndsChanged)
        #expect(report.diagnosis?.confidence == .confirmed)
    }

    /// The inner Alice layer of the `dave.sig...opaque` messages has the same LF defect; the
    /// verifier checks only the outermost layer, so the test opens the opaque layer itself.
    @Test func innerLayerSignedOverLFIsConfirmedToo() throws {
        let rows = try Corpus.rows().filter { $0.openSSLResult.contains("L2 chain=digest-mismatch sig=digest-mismatch REPAIRABLE:LF") }
        #expect(rows.count >= 4)
        for row in rows {
            let message = try Corpus.bytes(row)
            let root = try MIMEParser.parse(message: Array(message[MessageVerifier.startOfHeader(message)...]))
            guard case .pkcs7Mime(let entity) = SignatureLocator.locate(root) else { throw TestFailure("\(row.file): no p7m") }
            let trust = try TrustStore(anchors: [Corpus.root + "/" + row.trustAnchor])
            let verifier = MessageVerifier(trust: trust, options: VerificationOptions(
                allowWeakAlgorithms: true, diagnosis: DiagnosisOptions(timeBudget: .seconds(3_600))))
            guard case .success(let der) = verifier.decode(entity) else { throw TestFailure("\(row.file): undecodable") }
            let outer = CMSVerifier(trust: trust).verify(signedData: der, detachedContent: nil, at: Date())
            let inner = try #require(outer.content, "\(row.file)")
            let report = verifier.verifyAndDiagnose(message: inner, at: Date())
            #expect(report.diagnosis?.cause == .lineEndsChanged, "\(row.file): \(report.reason ?? "")")
            #expect(report.diagnosis?.confidence == .confirmed, "\(row.file)")
        }
    }

    /// Tampered and copied-signature messages: a cause or unknown, never a false "confirmed".
    @Test func tamperedAndMismatchedAreNeverConfirmed() throws {
        let rows = try Self.detachedRows().filter {
            Self.firstLayer($0).contains("digest-mismatch") && !Self.firstLayer($0).contains("REPAIRABLE")
        }
        #expect(rows.count >= 10)
        for row in rows {
            let report = try Self.report(row)
            #expect(report.result == .fail, "\(row.file)")
            #expect(report.diagnosis?.confidence != .confirmed, "\(row.file): \(String(describing: report.diagnosis))")
            if let diagnosis = report.diagnosis {
                #expect(diagnosis.digestComputations <= DiagnosisOptions().maxDigestComputations)
            }
        }
    }

    /// Good signatures stored with CRLF get no diagnosis at all.
    @Test func intactCorpusSignaturesHaveNoDiagnosis() throws {
        let rows = try Self.detachedRows().filter { Self.firstLayer($0).contains("sig=OK") }
        #expect(rows.count >= 5)
        for row in rows {
            let message = try Corpus.bytes(row)
            let report = try Self.report(row)
            if LineEnds.isCRLF(message) {
                #expect(report.diagnosis == nil, "\(row.file): \(String(describing: report.diagnosis))")
            } else {
                #expect(report.diagnosis == nil || report.diagnosis?.cause == .lineEndsChanged, "\(row.file)")
            }
        }
    }
}
