// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Testing
@testable import SMIME

/// The verifier against signatures made by our own CMSSigner with the throw-away test PKI.
@Suite("MessageVerifier")
struct MessageVerifierTests {
    static func verifier(_ trustFile: String? = nil, options: VerificationOptions = VerificationOptions()) throws -> MessageVerifier {
        let pki = try TestPKI.get()
        return MessageVerifier(trust: try TrustStore(anchors: [trustFile ?? pki.rootPEM]), options: options)
    }

    /// A multipart/signed message by `signer` with the From field replaced by `from`.
    static func signed(_ signer: String = "alice", from: String? = nil, entity: [UInt8] = Samples.text) throws -> [UInt8] {
        let identity = try TestPKI.get().identity(signer)
        let message = try Samples.multipartSignedMessage(entity: entity, identity: identity, digest: .sha256).message
        return replaceFrom(message, with: from ?? identity.addresses[0])
    }

    static func replaceFrom(_ message: [UInt8], with address: String) -> [UInt8] {
        let text = String(decoding: message, as: UTF8.self)
        return Array(text.replacingOccurrences(of: "From: Alice <alice@example.com>", with: "From: Someone <\(address)>").utf8)
    }

    static func replace(_ message: [UInt8], _ old: String, _ new: String) -> [UInt8] {
        Array(String(decoding: message, as: UTF8.self).replacingOccurrences(of: old, with: new).utf8)
    }

    @Test(arguments: ["alice", "bob"])
    func goodMultipartSignedPasses(signer: String) throws {
        let report = try Self.verifier().verify(message: try Self.signed(signer), at: Date())
        #expect(report.result == .pass, "\(report.reason ?? "")")
        #expect(report.reason == nil)
        #expect(report.part == "2")
        #expect(report.identifier == "\(signer)@example.com")
        #expect(report.signerAddresses == ["\(signer)@example.com"])
        #expect(report.serialHex?.isEmpty == false)
        #expect(report.issuer?.contains("Test Issuing CA") == true)
        #expect(report.signingTime != nil)
    }

    @Test func goodOpaquePassesAndLFStoredCopyToo() throws {
        let identity = try TestPKI.get().identity("bob")
        let message = try Samples.opaqueMessage(entity: Samples.multipart, identity: identity, digest: .sha512).message
        let withBob = Self.replaceFrom(message, with: "Bob@Example.COM")
        let verifier = try Self.verifier()
        let report = verifier.verify(message: withBob, at: Date())
        #expect(report.result == .pass, "\(report.reason ?? "")")
        #expect(report.part == "1")
        #expect(report.identifier == "bob@example.com")
        // A stored copy with LF line ends: the signed part is canonicalised again.
        let lf = verifier.verify(message: LineEnds.toLF(try Self.signed("alice")), at: Date())
        #expect(lf.result == .pass, "\(lf.reason ?? "")")
    }

    @Test func verifyWithFieldsAndBodyLikeTheMilter() throws {
        let (fields, body) = try MessageParser.split(try Self.signed())
        let report = try Self.verifier().verify(fields: fields, body: body, fromAddress: "alice@example.com", at: Date())
        #expect(report.result == .pass)
        let noFrom = try Self.verifier().verify(fields: fields, body: body, fromAddress: nil, at: Date())
        #expect(noFrom.result == .pass)
    }

    @Test func tamperedBodyFails() throws {
        let tampered = Self.replace(try Self.signed(), "this message is signed.", "this message is signed!")
        let report = try Self.verifier().verify(message: tampered, at: Date())
        #expect(report.result == .fail)
        #expect(report.reason?.contains("altered") == true, "\(report.reason ?? "")")
        #expect(report.identifier == "alice@example.com")
    }

    @Test func otherRootIsUntrusted() throws {
        let pki = try TestPKI.get()
        let report = try Self.verifier(pki.directory + "/other/otherroot.pem").verify(message: try Self.signed(), at: Date())
        #expect(report.result == .fail)
        #expect(report.reason?.contains("untrusted") == true, "\(report.reason ?? "")")
    }

    @Test func signerOtherThanFromIsPolicy() throws {
        let report = try Self.verifier().verify(message: try Self.signed("alice", from: "eve@example.com"), at: Date())
        #expect(report.result == .policy)
        #expect(report.reason == "signer alice@example.com is not the From address eve@example.com")
        // Local part and domain are compared case-insensitively.
        let upper = try Self.verifier().verify(message: try Self.signed("alice", from: "ALICE@EXAMPLE.com"), at: Date())
        #expect(upper.result == .pass, "\(upper.reason ?? "")")
    }

    @Test func subjectEmailOnlyCertificateMatchesFrom() throws {
        let report = try Self.verifier().verify(message: try Self.signed("news"), at: Date())
        #expect(report.result == .pass, "\(report.reason ?? "")")
        #expect(report.identifier == "newsletter@example.net")
    }

    @Test func expiredAtTheValidationTimeFails() throws {
        let later = Date().addingTimeInterval(50 * 365 * 86_400)
        let report = try Self.verifier().verify(message: try Self.signed(), at: later)
        #expect(report.result == .fail)
        #expect(report.reason?.contains("expired") == true, "\(report.reason ?? "")")
        let earlier = Date().addingTimeInterval(-50 * 365 * 86_400)
        let early = try Self.verifier().verify(message: try Self.signed(), at: earlier)
        #expect(early.result == .fail)
        #expect(early.reason?.contains("not yet valid") == true, "\(early.reason ?? "")")
    }

    /// The validation time is per call: concurrent calls at different times on one shared
    /// verifier each get their own answer.
    @Test func concurrentCallsWithDifferentTimesDoNotInterfere() async throws {
        let verifier = try Self.verifier()
        let message = try Self.signed()
        let later = Date().addingTimeInterval(50 * 365 * 86_400)
        let results = await withTaskGroup(of: (Bool, SMIMEResult).self) { group in
            for index in 0..<32 {
                let atLater = index % 2 == 1
                group.addTask { (atLater, verifier.verify(message: message, at: atLater ? later : Date()).result) }
            }
            var out: [(Bool, SMIMEResult)] = []
            for await result in group { out.append(result) }
            return out
        }
        #expect(results.count == 32)
        for (atLater, result) in results {
            #expect(result == (atLater ? .fail : .pass))
        }
    }

    @Test func listFooterWrapperPassesForTheInnerSignature() throws {
        let signed = try Self.signed()
        let split = try MessageParser.split(signed)
        let contentType = try #require(split.fields.first(named: "Content-Type")).value
        var wrapped = Samples.outerHeader.replacingOccurrences(of: "Alice <alice@example.com>", with: "alice@example.com")
        wrapped += "Content-Type: multipart/mixed; boundary=\"list-wrap\"\r\n\r\n"
        wrapped += "--list-wrap\r\nContent-Type:\(contentType)\r\n\r\n"
        var bytes = Array(wrapped.utf8) + split.body
        bytes += Array("\r\n--list-wrap\r\nContent-Type: text/plain\r\n\r\n_______\r\nlist footer\r\n--list-wrap--\r\n".utf8)
        // By default a signature over one part is not the message's: policy, naming the footer.
        let strict = try Self.verifier().verify(message: bytes, at: Date())
        #expect(strict.result == .policy)
        #expect(strict.reason == "only part 1 is signed; unsigned content: part 2 (text/plain) after it")
        #expect(strict.isPartialSignature)
        #expect(strict.partial?.footers.first?.firstLine == "list footer")  // the first line with words, not the separator
        #expect(strict.part == "1.2")
        var options = VerificationOptions()
        options.partialSignatures = .pass
        let report = try Self.verifier(options: options).verify(message: bytes, at: Date())
        #expect(report.result == .pass, "\(report.reason ?? "")")
        // RFC 7281 §3.2.1: the part holding the signature (part 2 of the signed part 1).
        #expect(report.part == "1.2")
    }

    @Test func unsignedIsNone() throws {
        let message = Array((Samples.outerHeader + "Content-Type: text/plain\r\n\r\nhello\r\n").utf8)
        let report = try Self.verifier().verify(message: message, at: Date())
        #expect(report.result == .none)
        #expect(!report.isEncrypted)
    }

    // MARK: hostile input: each returns a result with a reason

    /// A multipart/signed message whose signature part holds `signature` (already encoded).
    static func withSignaturePart(_ encoded: [UInt8], encoding: String = "base64") -> [UInt8] {
        var text = Samples.outerHeader
        text += "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"b\"\r\n\r\n"
        text += "--b\r\n" + String(decoding: Samples.text, as: UTF8.self) + "\r\n--b\r\n"
        text += "Content-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: \(encoding)\r\n\r\n"
        return Array(text.utf8) + encoded + Array("\r\n--b--\r\n".utf8)
    }

    @Test func truncatedCMSIsPermerror() throws {
        let identity = try TestPKI.get().identity("alice")
        let der = try CMSSigner.sign(content: Samples.text, identity: identity, digest: .sha256, detached: true)
        for cut in [1, 10, der.count / 2, der.count - 1] {
            let message = Self.withSignaturePart(Base64Lines.encode(der.prefix(cut)))
            let report = try Self.verifier().verify(message: message, at: Date())
            #expect(report.result == .permerror, "cut \(cut): \(report.result)")
            #expect(report.reason?.isEmpty == false)
        }
    }

    @Test func randomBytesAndGarbageBase64ArePermerror() throws {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<4_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for encoded in [Base64Lines.encode(random), Array("!!!! not base64 at all ????".utf8), []] {
            let report = try Self.verifier().verify(message: Self.withSignaturePart(encoded), at: Date())
            #expect(report.result == .permerror)
            #expect(report.reason?.isEmpty == false)
        }
        let binary = try Self.verifier().verify(message: Self.withSignaturePart(random, encoding: "binary"), at: Date())
        #expect(binary.result == .permerror)
    }

    @Test func missingSignaturePartIsPermerror() throws {
        var text = Samples.outerHeader
        text += "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=\"b\"\r\n\r\n"
        text += "--b\r\n" + String(decoding: Samples.text, as: UTF8.self) + "\r\n--b--\r\n"
        let report = try Self.verifier().verify(message: Array(text.utf8), at: Date())
        #expect(report.result == .permerror)
        #expect(report.reason == "multipart/signed has 1 part, not 2")
    }

    @Test func thousandNestedMultipartsGiveAResult() throws {
        var text = Samples.outerHeader + "Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n"
        for level in 0..<1_000 {
            text += "--b\(level)\r\nContent-Type: multipart/mixed; boundary=\"b\(level + 1)\"\r\n\r\n"
        }
        text += "--b1000\r\nContent-Type: text/plain\r\n\r\ndeep\r\n"
        let report = try Self.verifier().verify(message: Array(text.utf8), at: Date())
        #expect(report.result == .neutral)
        #expect(report.reason?.contains("nested deeper") == true, "\(report.reason ?? "")")
    }

    @Test func fiftyMegabyteSignaturePartIsRefusedBySize() throws {
        let line = Array("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n".utf8)
        var huge = [UInt8]()
        huge.reserveCapacity(50 << 20)
        while huge.count < 50 << 20 { huge += line }
        let report = try Self.verifier().verify(message: Self.withSignaturePart(huge), at: Date())
        #expect(report.result == .permerror)
        #expect(report.reason?.contains("over the limit") == true, "\(report.reason ?? "")")
    }

    @Test func tooManyCertificatesAreRefused() throws {
        let identity = try TestPKI.get().identity("alice")
        let der = try CMSSigner.sign(content: Samples.text, identity: identity, digest: .sha256, detached: true)
        let options = VerificationOptions(maxCertificates: 1)   // the signature carries 2
        let report = try Self.verifier(options: options).verify(message: Self.withSignaturePart(Base64Lines.encode(der)), at: Date())
        #expect(report.result == .permerror)
        #expect(report.reason?.contains("certificates") == true, "\(report.reason ?? "")")
    }

    /// The SignedData's digestAlgorithms with its SHA-256 OID changed to an unknown one
    /// (2.16.840.1.101.3.4.2.127); the SignerInfo keeps SHA-256, so the signed attributes still
    /// verify and CMS_verify gets as far as setting up the digests of the content.
    static func unknownDigestAlgorithms(_ der: [UInt8]) throws -> [UInt8] {
        let sha256: [UInt8] = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]
        guard let start = (0...(der.count - sha256.count)).first(where: { Array(der[$0..<$0 + sha256.count]) == sha256 }) else {
            throw TestFailure("no SHA-256 OID in the signature")
        }
        var mutated = der
        mutated[start + sha256.count - 1] = 0x7f
        return mutated
    }

    /// OpenSSL 3.0's CMS_verify leaks its copy of the content BIO on this path (272 bytes per
    /// message); the verifier must still give a clear permerror. The leak itself is caught by
    /// LeakSanitizer when this runs under `make sanitize`, and by the fuzz smoke, which runs the
    /// same kind of input (Fuzz/regressions/verify) under LeakSanitizer.
    @Test func unknownDigestInDigestAlgorithmsIsPermerror() throws {
        let identity = try TestPKI.get().identity("alice")
        let der = try CMSSigner.sign(content: Samples.text, identity: identity, digest: .sha256, detached: true)
        let message = Self.withSignaturePart(Base64Lines.encode(try Self.unknownDigestAlgorithms(der)))
        for _ in 0..<3 {
            let report = try Self.verifier().verify(message: message, at: Date())
            #expect(report.result == .permerror, "\(report.result): \(report.reason ?? "")")
            #expect(report.reason?.contains("unknown digest algorithm") == true, "\(report.reason ?? "")")
        }
    }
}
