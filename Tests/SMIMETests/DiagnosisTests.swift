// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Testing
@testable import SMIME

/// Hand-made breakage: each signed sample is broken in exactly one way and the verifier must
/// name that cause, confirmed by the signed digest.
@Suite("Diagnosis: one cause at a time")
struct DiagnosisTests {
    /// Verifies a broken message and returns the report (which must be a digest-mismatch fail).
    /// No time budget to speak of: the budget has its own tests (DiagnosisBudgetTests), and a
    /// loaded or sanitized run must not turn a confirmed cause into "unknown".
    static let untimed = DiagnosisOptions(timeBudget: .seconds(3_600))

    static func diagnose(_ message: [UInt8], _ options: DiagnosisOptions = untimed) throws -> (VerificationReport, SignatureDiagnosis) {
        let report = try Breakage.verifier(options).verify(message: message, at: Date())
        #expect(report.result == .fail, "\(report.reason ?? "")")
        guard let diagnosis = report.diagnosis else { throw TestFailure("no diagnosis: \(report.reason ?? "")") }
        #expect(report.reason == MessageVerifier.alteredReason(diagnosis))
        return (report, diagnosis)
    }

    static func expectConfirmed(_ message: [UInt8], _ cause: DiagnosisCause, footer: String? = nil) throws {
        let (report, diagnosis) = try diagnose(message)
        #expect(diagnosis.cause == cause, "\(diagnosis.detail)")
        #expect(diagnosis.confidence == .confirmed, "\(diagnosis.detail)")
        #expect(diagnosis.digestComputations >= 1)
        #expect(diagnosis.digestComputations <= DiagnosisOptions().maxDigestComputations)
        #expect(report.reason == "body altered after signing: \(diagnosis.description)")
        if let footer { #expect(diagnosis.footer == footer) }
    }

    @Test func intactSignaturesCarryNoDiagnosis() throws {
        for entity in DiagnosisSamples.all {
            let report = try Breakage.verifier().verify(message: try Breakage.signed(entity), at: Date())
            #expect(report.result == .pass, "\(report.reason ?? "")")
            #expect(report.diagnosis == nil)
        }
    }

    @Test func signerHashedLFLineEnds() throws {
        let entity = DiagnosisSamples.alternative
        let message = try Breakage.signed(entity, signedBytes: LineEnds.toLF(Array(entity.utf8)))
        try Self.expectConfirmed(message, .lineEndsChanged)
    }

    @Test func signatureSeparatorSpaceStripped() throws {
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.text)) {
            $0.replacingOccurrences(of: "\r\n-- \r\n", with: "\r\n--\r\n")
        }
        try Self.expectConfirmed(message, .trailingWhitespaceStripped)
    }

    @Test func blankLineBeforeBoundaryRemoved() throws {
        let message = try Breakage.editSignedBytes(try Breakage.signed(DiagnosisSamples.text)) { Array($0.dropLast(2)) }
        try Self.expectConfirmed(message, .blankLineBeforeBoundary(.removed))
    }

    @Test func blankLineBeforeBoundaryAdded() throws {
        let message = try Breakage.editSignedBytes(try Breakage.signed(DiagnosisSamples.text)) { $0 + [0x0D, 0x0A] }
        try Self.expectConfirmed(message, .blankLineBeforeBoundary(.added))
    }

    @Test(arguments: ["8bit", "8BIT"])
    func eightBitConvertedToQuotedPrintable(spelling: String) throws {
        let entity = DiagnosisSamples.eightBit.replacingOccurrences(of: ": 8bit", with: ": \(spelling)")
        let message = try Breakage.editSigned(try Breakage.signed(entity)) { part in
            let body = String(part[part.range(of: "\r\n\r\n")!.upperBound...])
            let qp = String(decoding: QuotedPrintable.encode(Array(body.utf8), isText: true), as: UTF8.self)
            return "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp
        }
        try Self.expectConfirmed(message, .transferEncodingChanged(.eightBitToQuotedPrintable))
    }

    @Test func eightBitConvertedWithSendmailMarker() throws {
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.eightBit)) { part in
            let body = String(part[part.range(of: "\r\n\r\n")!.upperBound...])
            let qp = String(decoding: QuotedPrintable.encode(Array(body.utf8), isText: true), as: UTF8.self)
            return "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
                + "X-MIME-Autoconverted: from 8bit to quoted-printable by relay.example id 1234\r\n\r\n" + qp
        }
        try Self.expectConfirmed(message, .transferEncodingChanged(.eightBitToQuotedPrintable))
    }

    @Test func base64Rewrapped() throws {
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.mixed)) { part in
            let data = (0..<300).map { UInt8($0 % 251) }
            let at76 = String(decoding: Base64Lines.encode(data, lineLength: 76), as: UTF8.self)
            let at64 = String(decoding: Base64Lines.encode(data, lineLength: 64), as: UTF8.self)
            return part.replacingOccurrences(of: at76, with: at64)
        }
        try Self.expectConfirmed(message, .transferEncodingChanged(.base64Rewrapped))
    }

    @Test func quotedPrintableReencoded() throws {
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.quotedPrintable)) { part in
            let split = part.range(of: "\r\n\r\n")!
            let decoded = QuotedPrintable.decode(Array(part[split.upperBound...].utf8))
            return String(part[..<split.upperBound]) + Self.quotedPrintable(decoded, width: 60)
        }
        try Self.expectConfirmed(message, .transferEncodingChanged(.quotedPrintableReencoded))
    }

    /// A second, simple quoted-printable encoder with soft breaks at `width` (as another relay's).
    static func quotedPrintable(_ bytes: [UInt8], width: Int) -> String {
        var out = "", line = ""
        var index = 0
        while index < bytes.count {
            if bytes[index] == 0x0D, index + 1 < bytes.count, bytes[index + 1] == 0x0A {
                out += line + "\r\n"; line = ""; index += 2; continue
            }
            let byte = bytes[index]
            let endsLine = index + 1 == bytes.count || bytes[index + 1] == 0x0D
            let token = (33...126).contains(byte) && byte != 0x3D || (byte == 0x20 && !endsLine) ? String(UnicodeScalar(byte))
                : "=" + String(format: "%02X", byte)
            if line.count + token.count > width - 1 { out += line + "=\r\n"; line = "" }
            line += token
            index += 1
        }
        return out + line
    }

    @Test func footerAppendedToTextPart() throws {
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.text)) {
            $0 + "\r\n________________\r\nDISCLAIMER: This e-mail is confidential.\r\nExample Corp., Sample Street 1\r\n"
        }
        try Self.expectConfirmed(message, .textAppended, footer: "DISCLAIMER: This e-mail is confidential.")
    }

    @Test func footerAppendedToTextPartOfAlternative() throws {
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.alternative)) {
            $0.replacingOccurrences(of: "see you.\r\n--alt-1", with: "see you.\r\nScanned for viruses by Example.\r\n--alt-1")
        }
        try Self.expectConfirmed(message, .textAppended, footer: "Scanned for viruses by Example.")
    }

    @Test func htmlInsertedBeforeBody() throws {
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.alternative)) {
            $0.replacingOccurrences(of: "</body>", with: "<hr><p>Sent through the Example gateway</p>\r\n</body>")
        }
        try Self.expectConfirmed(message, .htmlInserted, footer: "Sent through the Example gateway")
    }

    @Test func partAppendedToSignedMultipart() throws {
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.mixed)) {
            $0.replacingOccurrences(of: "--mix-1--", with: "--mix-1\r\nContent-Type: text/plain\r\n\r\nList footer line\r\n--mix-1--")
        }
        try Self.expectConfirmed(message, .partAppended, footer: "List footer line")
    }

    @Test func headerUnfolded() throws {
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.mixed)) {
            $0.replacingOccurrences(of: "multipart/mixed;\r\n\tboundary", with: "multipart/mixed; boundary")
        }
        try Self.expectConfirmed(message, .headersChanged(.refolded))
    }

    @Test func headerFolded() throws {
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.text)) {
            $0.replacingOccurrences(of: "text/plain; charset", with: "text/plain;\r\n charset")
        }
        try Self.expectConfirmed(message, .headersChanged(.refolded))
    }

    @Test func fromEscaped() throws {
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.fromLine)) {
            $0.replacingOccurrences(of: "\r\nFrom the", with: "\r\n>From the")
        }
        try Self.expectConfirmed(message, .fromEscaped)
    }

    @Test func rewrittenInnerBoundaryIsNeverConfirmed() throws {
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.alternative)) {
            $0.replacingOccurrences(of: "alt-1", with: "=_rewritten_7")
        }
        let (_, diagnosis) = try Self.diagnose(message)
        #expect(diagnosis.confidence != .confirmed, "\(diagnosis)")
    }

    /// Never a false "confirmed": one byte flipped anywhere in the body of any sample.
    @Test(arguments: DiagnosisSamples.all.indices)
    func flippedByteIsNeverConfirmed(sample: Int) throws {
        let message = try Breakage.signed(DiagnosisSamples.all[sample])
        let range = try Breakage.signedRange(message)
        let root = try MIMEParser.parse(message: Array(message[range]))
        let bodyStart = range.lowerBound + root.bodyRange.lowerBound
        var checked = 0
        for position in stride(from: bodyStart, to: range.upperBound - 2, by: max(1, (range.upperBound - bodyStart) / 12)) {
            var broken = message
            // Flip a low bit of a letter, which keeps the MIME structure but changes the content.
            guard (0x41...0x7A).contains(broken[position]) else { continue }
            broken[position] ^= 0x01
            let (_, diagnosis) = try Self.diagnose(broken)
            #expect(diagnosis.confidence != .confirmed, "position \(position): \(diagnosis)")
            #expect(diagnosis.digestComputations <= DiagnosisOptions().maxDigestComputations)
            checked += 1
        }
        #expect(checked >= 3)
    }

    @Test func likelyFooterWhenTheFooterCannotBeCutOff() throws {
        // The footer replaced the last line instead of following it: no cut reconstructs the
        // original, but the text reads like a disclaimer.
        let message = try Breakage.editSigned(try Breakage.signed(DiagnosisSamples.text)) {
            $0.replacingOccurrences(of: "Alice\r\n", with: "This e-mail is confidential and intended only for the addressee.\r\n")
        }
        let (report, diagnosis) = try Self.diagnose(message)
        #expect(diagnosis.cause == .textAppended)
        #expect(diagnosis.confidence == .likely)
        #expect(diagnosis.footer?.hasPrefix("This e-mail is confidential") == true)
        #expect(report.reason == "body altered after signing: footer appended to text/plain part (likely)")
    }

    @Test func diagnosisCanBeSwitchedOff() throws {
        let message = try Breakage.editSignedBytes(try Breakage.signed(DiagnosisSamples.text)) { Array($0.dropLast(2)) }
        let report = try Breakage.verifier(DiagnosisOptions(enabled: false)).verify(message: message, at: Date())
        #expect(report.result == .fail)
        #expect(report.diagnosis == nil)
        #expect(report.reason == "body altered after signing (digest mismatch)")
    }

    @Test func opaqueSignedDataIsNotDiagnosed() throws {
        let identity = try TestPKI.get().identity("alice")
        let (message, _) = try Samples.opaqueMessage(entity: Array(DiagnosisSamples.text.utf8), identity: identity, digest: .sha256)
        // Any change inside the base64 breaks the CMS structure or the signature, never just the digest.
        var broken = message
        let index = broken.count - 200
        broken[index] = broken[index] == 0x41 ? 0x42 : 0x41
        let report = try Breakage.verifier().verify(message: broken, at: Date())
        #expect(report.result != .pass)
        #expect(report.diagnosis == nil)
    }
}
