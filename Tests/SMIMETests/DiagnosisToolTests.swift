// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Testing
@testable import SMIME

/// Real tools that alter signed mail, run as subprocesses, and the diagnosis of their damage.
/// Messages are handed to the tools as mail is stored on Unix (LF line ends), as they expect.
@Suite("Diagnosis: real tools")
struct DiagnosisToolTests {
    static func has(_ tool: String) -> Bool {
        (try? Subprocess.run("sh", ["-c", "command -v \(tool)"]))?.status == 0
    }

    /// A list-style wrapper: multipart/mixed holding the signed message's multipart/signed part
    /// and an attachment (altermime only reaches signatures nested like this).
    static func wrapped(_ entity: String) throws -> [UInt8] {
        let signed = try Breakage.signed(entity)
        let root = try MIMEParser.parse(message: signed)
        let contentType = try #require(root.fields.first(named: "Content-Type")).value
        let text = "From: alice@example.com\r\nTo: bob@example.net\r\nSubject: wrapped\r\nMIME-Version: 1.0\r\n"
            + "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type:\(contentType)\r\n\r\n"
            + String(decoding: root.body, as: UTF8.self)
            + "\r\n--outer\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--outer--\r\n"
        return Array(text.utf8)
    }

    /// Runs `tool` on the message stored in a file (LF line ends) and returns the file afterwards.
    static func alter(_ message: [UInt8], _ command: (String) -> [String]) throws -> [UInt8] {
        let scratch = try TemporaryDirectory(prefix: "diag-tool")
        let path = try scratch.write("message.eml", LineEnds.toLF(message))
        let arguments = command(path)
        let result = try Subprocess.run(arguments[0], Array(arguments.dropFirst()), in: scratch.path)
        guard result.status == 0 else { throw TestFailure("\(arguments[0]) failed: \(result.combined)") }
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test(.enabled(if: has("altermime")))
    func altermimeDisclaimerInNestedTextPart() throws {
        let scratch = try TemporaryDirectory(prefix: "diag-disclaimer")
        let disclaimer = try scratch.write("disclaimer.txt", Array("Company disclaimer: this message may be confidential.\n".utf8))
        let original = try Self.wrapped(DiagnosisSamples.text)
        let altered = try Self.alter(original) { ["altermime", "--input=\($0)", "--disclaimer=\(disclaimer)"] }
        #expect(altered != LineEnds.toLF(original), "altermime changed nothing")
        let (_, diagnosis) = try DiagnosisTests.diagnose(altered)
        #expect(diagnosis.cause == .textAppended, "\(diagnosis.detail)")
        #expect(diagnosis.confidence == .confirmed)
        #expect(diagnosis.footer == "Company disclaimer: this message may be confidential.")
    }

    @Test(.enabled(if: has("altermime")))
    func altermimeDisclaimerInNestedTextAndHTMLParts() throws {
        let scratch = try TemporaryDirectory(prefix: "diag-disclaimer")
        let disclaimer = try scratch.write("disclaimer.txt", Array("Company disclaimer: this message may be confidential.\n".utf8))
        let original = try Self.wrapped(DiagnosisSamples.alternative)
        let altered = try Self.alter(original) {
            ["altermime", "--input=\($0)", "--disclaimer=\(disclaimer)", "--disclaimer-html=\(disclaimer)"]
        }
        let (report, diagnosis) = try DiagnosisTests.diagnose(altered)
        #expect(diagnosis.cause == .textAppended, "\(diagnosis.detail)")
        #expect(diagnosis.confidence == .confirmed)
        #expect(diagnosis.mediaType == "text/plain and text/html")
        #expect(report.reason == "body altered after signing: footer appended to text/plain and text/html parts (confirmed)")
    }

    /// reformime -r7 knows multipart/signed: it converts 8bit parts outside the signature and
    /// replaces boundaries, but leaves the signed part byte for byte, so the signature holds.
    @Test(.enabled(if: has("reformime")))
    func reformimeLeavesTheSignedPartAlone() throws {
        let original = try Self.wrapped(DiagnosisSamples.eightBit)
        let withEightBitOutside = Array(String(decoding: original, as: UTF8.self).replacingOccurrences(
            of: "--outer\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA",
            with: "--outer\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nList f\u{FC}\u{DF}er").utf8)
        let scratch = try TemporaryDirectory(prefix: "diag-reformime")
        let input = try scratch.write("in.eml", LineEnds.toLF(withEightBitOutside))
        let result = try Subprocess.run("sh", ["-c", "reformime -r7 < '\(input)'"])
        #expect(result.status == 0)
        let rewritten = Array(result.stdout.utf8)
        #expect(result.stdout.contains("X-Mime-Autoconverted: from 8bit to quoted-printable by reformime"))
        let report = try Breakage.verifier().verify(message: rewritten, at: Date())
        // The signature holds (only the unsigned list part beside it is policy).
        #expect(report.result == .policy && report.isPartialSignature, "\(report.reason ?? "")")
        #expect(report.integrity == .intact)
        #expect(report.diagnosis == nil)
    }

    /// OpenSSL signing an LF file with -binary makes the comm-central defect: signed over LF,
    /// sent with CRLF.
    @Test(.enabled(if: has("openssl")))
    func opensslBinarySignatureOverLFFile() throws {
        let pki = try TestPKI.get()
        let scratch = try TemporaryDirectory(prefix: "diag-openssl")
        let entity = try scratch.write("entity.txt", LineEnds.toLF(Array(DiagnosisSamples.alternative.utf8)))
        let result = try Subprocess.run("openssl", ["cms", "-sign", "-binary", "-in", entity, "-signer", pki.certs + "/bob.pem",
                                                    "-inkey", pki.certs + "/bob.key", "-md", "sha256", "-from", "bob@example.com",
                                                    "-to", "x@example.net", "-subject", "LF"])
        #expect(result.status == 0, "\(result.stderr)")
        // On the wire the whole message has CRLF line ends.
        let (_, diagnosis) = try DiagnosisTests.diagnose(LineEnds.toCRLF(Array(result.stdout.utf8)))
        #expect(diagnosis.cause == .lineEndsChanged)
        #expect(diagnosis.confidence == .confirmed)
    }

    /// A message stored with LF line ends (dos2unix-style, as `tr -d '\r'` does) still verifies;
    /// `verifyAndDiagnose` notes that the copy differs from what was signed.
    @Test func crlfToLFConversionOfAStoredMessage() throws {
        let scratch = try TemporaryDirectory(prefix: "diag-lf")
        let input = try scratch.write("in.eml", try Breakage.signed(DiagnosisSamples.mixed))
        let result = try Subprocess.run("sh", ["-c", "tr -d '\\r' < '\(input)'"])
        let converted = Array(result.stdout.utf8)
        #expect(!converted.contains(0x0D))
        let report = try Breakage.verifier().verifyAndDiagnose(message: converted, at: Date())
        #expect(report.result == .pass, "\(report.reason ?? "")")
        #expect(report.diagnosis?.cause == .lineEndsChanged)
        #expect(report.diagnosis?.confidence == .confirmed)
    }
}
