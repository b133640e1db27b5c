// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
@testable import SMIME

/// Signed sample messages and the ways the diagnosis tests break them.
enum Breakage {
    /// The verifier with the test PKI's root and the given diagnosis bounds (by default no time
    /// budget to speak of: a loaded or sanitized run must still find the cause).
    static func verifier(_ diagnosis: DiagnosisOptions = DiagnosisOptions(timeBudget: .seconds(3_600))) throws -> MessageVerifier {
        MessageVerifier(trust: try TrustStore(anchors: [try TestPKI.get().rootPEM]),
                        options: VerificationOptions(diagnosis: diagnosis))
    }

    /// A multipart/signed message by alice over `entity` (or over `signedBytes` when the signer
    /// hashed other bytes than it sent).
    static func signed(_ entity: String, signedBytes: [UInt8]? = nil) throws -> [UInt8] {
        let identity = try TestPKI.get().identity("alice")
        let bytes = Array(entity.utf8)
        let signature = try CMSSigner.sign(content: signedBytes ?? bytes, identity: identity, digest: .sha256, detached: true)
        let wrapped = try SMIMEWriter.multipartSigned(entity: bytes, signature: signature, digest: .sha256)
        return Array((Samples.outerHeader + "Content-Type: " + wrapped.contentType + "\r\n\r\n").utf8) + wrapped.body
    }

    /// The range of part 1 (the signed entity) in a whole message.
    static func signedRange(_ message: [UInt8]) throws -> Range<Int> {
        let root = try MIMEParser.parse(message: message)
        guard case .detached(_, let signed, _) = SignatureLocator.locate(root) else { throw TestFailure("not multipart/signed") }
        return signed.range
    }

    /// The message with part 1 rewritten by `change` (a text-level edit).
    static func editSigned(_ message: [UInt8], _ change: (String) -> String) throws -> [UInt8] {
        let range = try signedRange(message)
        let part = String(decoding: message[range], as: UTF8.self)
        let changed = change(part)
        guard changed != part else { throw TestFailure("the edit changed nothing") }
        return Array(message[..<range.lowerBound]) + Array(changed.utf8) + Array(message[range.upperBound...])
    }

    /// The message with part 1 rewritten at the byte level.
    static func editSignedBytes(_ message: [UInt8], _ change: ([UInt8]) -> [UInt8]) throws -> [UInt8] {
        let range = try signedRange(message)
        let changed = change(Array(message[range]))
        return Array(message[..<range.lowerBound]) + changed + Array(message[range.upperBound...])
    }
}

/// Sample signed entities (CRLF) for the diagnosis tests. Deliberately free of disclaimer words,
/// so that "likely" can only come from what a test adds.
enum DiagnosisSamples {
    static let text = "Content-Type: text/plain; charset=us-ascii\r\n"
        + "Content-Transfer-Encoding: 7bit\r\n\r\n"
        + "Hello Bob,\r\n\r\nthe figures for March are attached below.\r\n\r\n-- \r\nAlice\r\n"

    static let eightBit = "Content-Type: text/plain; charset=utf-8\r\n"
        + "Content-Transfer-Encoding: 8bit\r\n\r\n"
        + "Gr\u{FC}\u{DF}e Bob,\r\n\r\nsch\u{F6}ne Gr\u{FC}\u{DF}e aus K\u{F6}ln.\r\n"

    static let alternative = "Content-Type: multipart/alternative; boundary=\"alt-1\"\r\n\r\n"
        + "--alt-1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello Bob,\r\nsee you.\r\n"
        + "--alt-1\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n"
        + "<html><body><p>Hello Bob,</p>\r\n<p>see you.</p>\r\n</body></html>\r\n"
        + "--alt-1--\r\n"

    static let mixed = "Content-Type: multipart/mixed;\r\n\tboundary=\"mix-1\"\r\n\r\n"
        + "--mix-1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe data is attached.\r\n"
        + "--mix-1\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n"
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + String(decoding: Base64Lines.encode((0..<300).map { UInt8($0 % 251) }, lineLength: 76), as: UTF8.self) + "\r\n"
        + "--mix-1--\r\n"

    static let quotedPrintable = "Content-Type: text/plain; charset=utf-8\r\n"
        + "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + String(decoding: QuotedPrintable.encode(Array(("A long line: " + String(repeating: "bl\u{E4}h ", count: 40)
            + "\r\nand a short one.\r\n").utf8), isText: true), as: UTF8.self)

    static let fromLine = "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        + "Hello Bob,\r\nFrom the figures we see growth.\r\n"

    static let all = [text, eightBit, alternative, mixed, quotedPrintable, fromLine]
}
