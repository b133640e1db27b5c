// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Testing
@testable import SMIME

/// The diagnosis is bounded: hostile content cannot make it compute more digests than allowed,
/// and the time budget stops it. Asserted through the counters, never through timings.
@Suite("Diagnosis: budget")
struct DiagnosisBudgetTests {
    /// Signs `entity` and returns the signature plus the entity with one byte changed at `flip`.
    static func brokenPair(_ entity: [UInt8], flip: Int) throws -> (content: [UInt8], signature: [UInt8]) {
        let signature = try CMSSigner.sign(content: entity, identity: try TestPKI.get().identity("alice"),
                                           digest: .sha256, detached: true)
        var broken = entity
        broken[flip] ^= 0x01
        return (broken, signature)
    }

    @Test func twentyMegabyteTextPartStaysWithinTheDigestLimit() throws {
        var entity = Array("Content-Type: text/plain; charset=us-ascii\r\n\r\n".utf8)
        let line = Array((String(repeating: "lorem ipsum dolor ", count: 4) + "\r\n").utf8)
        while entity.count < 20 << 20 { entity += line }
        let (content, signature) = try Self.brokenPair(entity, flip: entity.count / 2)
        for limit in [0, 5, 40] {
            // A generous time budget, so the digest limit is what stops it.
            let diagnoser = SignatureDiagnoser(options: DiagnosisOptions(maxDigestComputations: limit, timeBudget: .seconds(3_600)))
            let diagnosis = diagnoser.diagnose(signedContent: content, signature: signature)
            #expect(diagnosis.digestComputations <= limit)
            #expect(diagnosis.confidence != .confirmed)
            if limit < 40 { #expect(diagnosis.detail.contains("limit of \(limit) digest computations"), "\(diagnosis.detail)") }
        }
    }

    @Test func timeBudgetStopsTheSearch() throws {
        let entity = Array(DiagnosisSamples.alternative.utf8)
        let (content, signature) = try Self.brokenPair(entity, flip: entity.count - 30)
        let diagnosis = SignatureDiagnoser(options: DiagnosisOptions(timeBudget: .zero))
            .diagnose(signedContent: content, signature: signature)
        #expect(diagnosis.digestComputations == 0)
        #expect(diagnosis.confidence != .confirmed)
        #expect(diagnosis.detail.contains("time budget"), "\(diagnosis.detail)")
    }

    @Test func thousandsOfPartsStayWithinTheDigestLimit() throws {
        var text = "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        for index in 0..<3_000 {
            let encoding = index % 3 == 0 ? "quoted-printable" : (index % 3 == 1 ? "base64" : "7bit")
            let body = encoding == "base64" ? "AAECAwQFBgcICQoL" : (encoding == "quoted-printable" ? "caf=C3=A9 \(index)" : "part \(index)")
            text += "--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: \(encoding)\r\n\r\n\(body)\r\n"
        }
        text += "--b--\r\n"
        let entity = Array(text.utf8)
        let (content, signature) = try Self.brokenPair(entity, flip: entity.count / 2)
        let options = DiagnosisOptions(maxDigestComputations: 64, timeBudget: .seconds(3_600))
        let diagnoser = SignatureDiagnoser(options: options, limits: MIMELimits(maxDepth: 8, maxParts: 10_000))
        let diagnosis = diagnoser.diagnose(signedContent: content, signature: signature)
        #expect(diagnosis.digestComputations <= 64)
        #expect(diagnosis.confidence != .confirmed)
        // Over the verifier's part limit the content does not parse: only whole-content candidates.
        let small = SignatureDiagnoser(options: options, limits: MIMELimits(maxDepth: 8, maxParts: 100))
            .diagnose(signedContent: content, signature: signature)
        #expect(small.digestComputations <= 64)
        #expect(small.confidence == .unknown)
    }

    @Test func aLowLimitStillConfirmsWhatItReaches() throws {
        // The blank-line candidates come early: two computations are enough for them.
        let entity = Array(DiagnosisSamples.text.utf8)
        let signature = try CMSSigner.sign(content: entity, identity: try TestPKI.get().identity("alice"), digest: .sha256, detached: true)
        let content = Array(entity.dropLast(2))
        let enough = SignatureDiagnoser(options: DiagnosisOptions(maxDigestComputations: 3, timeBudget: .seconds(3_600))).diagnose(signedContent: content, signature: signature)
        #expect(enough.cause == .blankLineBeforeBoundary(.removed))
        #expect(enough.confidence == .confirmed)
        #expect(enough.digestComputations <= 3)
        // A footer needs more than three: the limit turns it into "unknown" (or a trace: likely).
        let footer = entity + Array("\r\n-- \r\nExample Corp, Sample Street 1\r\nRegistered in Nowhere\r\n".utf8)
        let stopped = SignatureDiagnoser(options: DiagnosisOptions(maxDigestComputations: 3, timeBudget: .seconds(3_600))).diagnose(signedContent: footer, signature: signature)
        #expect(stopped.confidence != .confirmed)
        #expect(stopped.digestComputations <= 3)
        let found = SignatureDiagnoser(options: DiagnosisOptions(timeBudget: .seconds(3_600))).diagnose(signedContent: footer, signature: signature)
        #expect(found.cause == .textAppended)
        #expect(found.confidence == .confirmed)
        #expect(found.footer == "Example Corp, Sample Street 1")
    }

    @Test func garbageSignatureGivesUnknownWithoutWork() {
        let diagnosis = SignatureDiagnoser().diagnose(signedContent: Array(DiagnosisSamples.text.utf8), signature: [0x30, 0x03, 0x02, 0x01, 0x00])
        #expect(diagnosis.confidence == .unknown)
        #expect(diagnosis.digestComputations == 0)
        #expect(diagnosis.detail.hasPrefix("cannot diagnose"))
    }
}
