// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Testing
@testable import SMIME

/// Verification of a spooled multipart/signed from its file (`verify(fields:file:...)`) against
/// the in-memory path on the same body: the same report, or `needsMemory` where only the
/// in-memory path can decide.
@Suite("Streamed verification")
struct StreamedVerificationTests {
    static func verifier(diagnosis: Bool = true) throws -> MessageVerifier {
        var options = VerificationOptions()
        options.diagnosis.enabled = diagnosis
        return try MessageVerifierTests.verifier(options: options)
    }

    /// The body of `message` in a spool-like file (unlinked scratch file).
    static func file(_ body: [UInt8]) throws -> BodyFile {
        try BodyFile.scratch(in: NSTemporaryDirectory()) { fd in
            _ = body.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }
    }

    /// Both paths on one message: (in memory, streamed).
    static func both(_ message: [UInt8], verifier: MessageVerifier) throws -> (VerificationReport, StreamedVerification) {
        // Line ends as given (MessageParser.split would make them CRLF).
        let (fields, body) = try verifier.storedMessage(message)
        let from = MessageVerifier.fromAddress(fields)
        let now = Date()
        let memory = verifier.verify(fields: fields, body: body, fromAddress: from, at: now)
        let streamed = try verifier.verify(fields: fields, file: try file(body), fromAddress: from, at: now)
        return (memory, streamed)
    }

    /// The streamed report, which must exist and equal the in-memory one.
    @discardableResult
    static func sameReport(_ message: [UInt8], verifier: MessageVerifier) throws -> VerificationReport {
        let (memory, streamed) = try both(message, verifier: verifier)
        guard case let .verified(report, signatureBody) = streamed else {
            Issue.record("not streamed: \(streamed)")
            return memory
        }
        #expect(report == memory, "streamed \(report.result) \(report.reason ?? ""), in memory \(memory.result) \(memory.reason ?? "")")
        // What the harvest parses finds the same signature part.
        #expect(!signatureBody.isEmpty)
        return report
    }

    static func needsMemory(_ message: [UInt8], verifier: MessageVerifier) throws {
        let (_, streamed) = try both(message, verifier: verifier)
        guard case .needsMemory = streamed else {
            Issue.record("streamed, but only the in-memory path can decide: \(streamed)")
            return
        }
    }

    @Test func goodSignaturePassesLikeInMemory() throws {
        let report = try Self.sameReport(try MessageVerifierTests.signed(), verifier: try Self.verifier())
        #expect(report.result == .pass, "\(report.reason ?? "")")
        #expect(report.part == "2")
        #expect(report.identifier == "alice@example.com")
        // A larger, multipart part 1 (read for its header only from the first bytes).
        var entity = Samples.multipart
        let filler = Array(String(repeating: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", count: 5_000).utf8)
        entity.replaceSubrange(entity.count - 20..<entity.count - 20, with: filler)
        let big = try Self.sameReport(try MessageVerifierTests.signed(entity: entity), verifier: try Self.verifier())
        #expect(big.result == .pass, "\(big.reason ?? "")")
    }

    @Test func signerOtherThanFromIsPolicyLikeInMemory() throws {
        let report = try Self.sameReport(try MessageVerifierTests.signed(from: "mallory@example.net"), verifier: try Self.verifier())
        #expect(report.result == .policy)
    }

    @Test func tamperedPartOneFails() throws {
        let tampered = MessageVerifierTests.replace(try MessageVerifierTests.signed(), "this message is signed.", "this message is signed!")
        // Without diagnosis: the streamed report itself.
        let report = try Self.sameReport(tampered, verifier: try Self.verifier(diagnosis: false))
        #expect(report.result == .fail)
        #expect(report.reason?.contains("altered") == true, "\(report.reason ?? "")")
        // With diagnosis the diagnoser needs part 1 in memory: the in-memory path decides.
        try Self.needsMemory(tampered, verifier: try Self.verifier())
    }

    @Test func garbageSignaturePartIsPermerrorLikeInMemory() throws {
        let message = try MessageVerifierTests.signed()
        let text = String(decoding: message, as: UTF8.self)
        // Replace the base64 of the signature part with garbage.
        let marker = "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n"
        let start = try #require(text.range(of: marker))
        let end = try #require(text.range(of: "\r\n--", range: start.upperBound..<text.endIndex))
        let garbage = text.replacingCharacters(in: start.upperBound..<end.lowerBound, with: "this is not a signature at all!\r\n####")
        let report = try Self.sameReport(Array(garbage.utf8), verifier: try Self.verifier())
        #expect(report.result == .permerror, "\(report.result) \(report.reason ?? "")")
        // Valid base64 of bytes that are no CMS at all.
        let junk = text.replacingCharacters(in: start.upperBound..<end.lowerBound, with: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        let other = try Self.sameReport(Array(junk.utf8), verifier: try Self.verifier())
        #expect(other.result == .permerror, "\(other.result) \(other.reason ?? "")")
    }

    @Test func missingCloseDelimiterLikeInMemory() throws {
        let message = try MessageVerifierTests.signed()
        let text = String(decoding: message, as: UTF8.self)
        let close = try #require(text.range(of: "--\r\n", options: .backwards))
        // "...\r\n--boundary--\r\n" → "...\r\n" (the close-delimiter line removed).
        let lineStart = try #require(text.range(of: "\r\n--", options: .backwards, range: text.startIndex..<close.lowerBound))
        let open = String(text[..<lineStart.lowerBound]) + "\r\n"
        let report = try Self.sameReport(Array(open.utf8), verifier: try Self.verifier())
        #expect(report.result == .pass, "\(report.reason ?? "")")
        // No close-delimiter and no line end at the end either.
        let bare = try Self.sameReport(Array(text[..<lineStart.lowerBound].utf8), verifier: try Self.verifier())
        #expect(bare.result == .pass, "\(bare.reason ?? "")")
    }

    /// A signature that carries its content (eContent) beside part 1: identical bytes are
    /// harmless, other bytes are the CVE-2018-18509 trick. Compared from the file.
    @Test func eContentPresentIsComparedLikeInMemory() throws {
        let identity = try TestPKI.get().identity("alice")
        let entity = Samples.text
        let header = Samples.outerHeader
        func message(signedOver content: [UInt8]) throws -> [UInt8] {
            let withContent = try CMSSigner.sign(content: content, identity: identity, digest: .sha256, detached: false)
            let wrapped = try SMIMEWriter.multipartSigned(entity: entity, signature: withContent, digest: .sha256)
            return Array((header + "Content-Type: " + wrapped.contentType + "\r\n\r\n").utf8) + wrapped.body
        }
        let same = try Self.sameReport(try message(signedOver: entity), verifier: try Self.verifier())
        #expect(same.result == .pass, "\(same.reason ?? "")")
        var other = entity
        other[other.count - 3] = UInt8(ascii: "X")
        let differs = try Self.sameReport(try message(signedOver: other), verifier: try Self.verifier())
        #expect(differs.result == .fail)
        #expect(differs.reason?.contains("CVE-2018-18509") == true, "\(differs.reason ?? "")")
        // Same length, one byte apart in the middle: found by the piecewise comparison.
        var middle = entity
        middle[middle.count / 2] ^= 0x01
        let close = try Self.sameReport(try message(signedOver: middle), verifier: try Self.verifier())
        #expect(close.result == .fail)
    }

    @Test func protectedHeadersAreReadFromPartOne() throws {
        let entity = Array(("Content-Type: text/plain; charset=us-ascii; hp=\"clear\"\r\n"
                            + "From: alice@example.com\r\nSubject: the real subject\r\n\r\n"
                            + "Hello\r\n").utf8)
        let report = try Self.sameReport(try MessageVerifierTests.signed(entity: entity), verifier: try Self.verifier())
        #expect(report.protectedHeaders?.form == .clear)
        #expect(report.protectedHeaders?.fields.first(named: "Subject")?.value.contains("the real subject") == true)
        // Part 1 over the prefix read whole: the header comes from its first bytes.
        let long = entity + Array(String(repeating: "padding line of the protected-header test\r\n", count: 8_000).utf8)
        let big = try Self.sameReport(try MessageVerifierTests.signed(entity: long), verifier: try Self.verifier())
        #expect(big.protectedHeaders?.form == .clear)
    }

    @Test func irregularBodiesAreLeftToTheInMemoryPath() throws {
        let verifier = try Self.verifier()
        // A bare LF in part 1: the in-memory path canonicalises it before hashing.
        // (On bytes: in a Swift String "\r\n" is one Character.)
        var lf = try MessageVerifierTests.signed()
        let hello = Array("Hello Bob,\r\n".utf8)
        let at = try #require((0...(lf.count - hello.count)).first { lf[$0..<($0 + hello.count)].elementsEqual(hello) })
        lf.remove(at: at + hello.count - 2)
        let (lfFields, lfBody) = try verifier.storedMessage(lf)
        let lfRoot = try MIMEParser.parse(fields: lfFields, body: lfBody)
        var lfScanner = SignedBodyScanner(boundary: try #require(lfRoot.contentType.boundary), maxSignaturePart: 1 << 20)
        lfBody.withUnsafeBytes { lfScanner.feed($0) }
        #expect(lfScanner.finish() == .irregular("part 1 has a line end that is not CRLF"))
        try Self.needsMemory(lf, verifier: verifier)
        // Not multipart/signed at all.
        let opaque = try Samples.opaqueMessage(entity: Samples.text, identity: try TestPKI.get().identity("alice"), digest: .sha256).message
        try Self.needsMemory(opaque, verifier: verifier)
        // Three parts.
        let message = try MessageVerifierTests.signed()
        let text = String(decoding: message, as: UTF8.self)
        let close = try #require(text.range(of: "--\r\n", options: .backwards))
        let lineStart = try #require(text.range(of: "\r\n--", options: .backwards, range: text.startIndex..<close.lowerBound))
        let boundaryLine = String(text[lineStart.upperBound..<close.lowerBound])
        let three = String(text[..<lineStart.lowerBound]) + "\r\n--" + boundaryLine + "\r\n\r\nextra\r\n--" + boundaryLine + "--\r\n"
        try Self.needsMemory(Array(three.utf8), verifier: verifier)
    }

    @Test func scannerAgreesWithTheParserAtEveryPieceSize() throws {
        let message = try MessageVerifierTests.signed()
        let (fields, body) = try MessageParser.split(message)
        let root = try MIMEParser.parse(fields: fields, body: body)
        let boundary = try #require(root.contentType.boundary)
        for size in [1, 2, 3, 7, 64, 4096] {
            var scanner = SignedBodyScanner(boundary: boundary, maxSignaturePart: 1 << 20)
            var offset = 0
            while offset < body.count, !scanner.isFinished {
                let n = min(size, body.count - offset)
                body[offset..<(offset + n)].withUnsafeBytes { scanner.feed($0) }
                offset += n
            }
            let outcome = scanner.finish()
            #expect(outcome == .layout(SignedBodyLayout(signedRange: root.parts[0].range, signatureRange: root.parts[1].range,
                                                        isTerminated: true)), "piece \(size)")
        }
        // A signature part over the cap is never read.
        var small = SignedBodyScanner(boundary: boundary, maxSignaturePart: 100)
        body.withUnsafeBytes { small.feed($0) }
        guard case .irregular = small.finish() else { Issue.record("a large signature part was accepted"); return }
    }
}
