// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Testing
@testable import SMIME

/// Outbound RFC 9788 header protection (`HeaderProtection yes`): the signed entity carries the
/// protected header fields and `hp="clear"`, and the signature still verifies in verifiers we
/// did not write (OpenSSL, NSS, gpgsm) and in ours, which finds the protected fields.
@Suite("Header protection interop")
struct HeaderProtectionInteropTests {
    static let fields = [
        HeaderField(name: "Received", value: " from client by mx"),
        HeaderField(name: "From", value: " Alice <alice@example.com>"),
        HeaderField(name: "To", value: " bob@example.net,\n\tcarol@example.com"),
        HeaderField(name: "Subject", value: " Gr\u{FC}\u{DF}e: quarterly figures"),
        HeaderField(name: "Date", value: " Mon, 23 Nov 2026 10:00:00 +0000"),
        HeaderField(name: "Message-ID", value: " <hp1@example.com>"),
        HeaderField(name: "MIME-Version", value: " 1.0"),
        HeaderField(name: "Content-Type", value: " text/plain; charset=us-ascii"),
    ]
    static let body = Array("The figures are 42.\r\n".utf8)

    static func entity() throws -> [UInt8] {
        try SignableEntity.make(fields: fields, body: body).protectingHeaders(fields).bytes
    }

    @Test func theEntityCarriesTheProtectedFieldsAndHP() throws {
        let text = String(decoding: try Self.entity(), as: UTF8.self)
        #expect(text.hasPrefix("Content-Type: text/plain; charset=us-ascii; hp=\"clear\"\r\n"), "\(text)")
        #expect(text.contains("\r\nFrom: Alice <alice@example.com>\r\n"))
        #expect(text.contains("\r\nTo: bob@example.net,\r\n\tcarol@example.com\r\n"))
        #expect(text.contains("\r\nSubject: =?utf-8?"), "8-bit Subject encoded: \(text)")
        #expect(text.contains("\r\nMessage-ID: <hp1@example.com>\r\n"))
        #expect(!text.contains("Received:") && !text.contains("MIME-Version:"))
        #expect(text.hasSuffix("\r\n\r\nThe figures are 42.\r\n"))
        // Already protected: left alone.
        let protected = try SignableEntity.make(fields: Self.fields, body: Self.body).protectingHeaders(Self.fields)
        #expect(protected.protectingHeaders(Self.fields).bytes == protected.bytes)
    }

    @Test(arguments: ["alice", "bob"])
    func verifiersWeDidNotWriteAcceptIt(signer: String) throws {
        let pki = try TestPKI.get()
        let identity = try pki.identity(signer)
        let entity = try Self.entity()
        let (message, detached) = try Samples.multipartSignedMessage(entity: entity, identity: identity, digest: .sha256)
        let openssl = try OpenSSLVerifier.verify(message: message, root: pki.rootPEM)
        #expect(openssl.valid, "\(openssl.log)")
        #expect(openssl.content == entity)
        let (opaqueMessage, opaque) = try Samples.opaqueMessage(entity: entity, identity: identity, digest: .sha256)
        #expect(try OpenSSLVerifier.verify(message: opaqueMessage, root: pki.rootPEM).valid)
        let nss = try NSSVerifier.verify(signature: detached, content: entity, root: pki.rootPEM)
        #expect(nss.valid, "\(nss.log)")
        #expect(try NSSVerifier.verify(signature: opaque, content: nil, root: pki.rootPEM).valid)
        let gpgsm = try GPGSMVerifier.verify(signature: detached, content: entity, root: pki.rootPEM)
        #expect(gpgsm.valid, "\(gpgsm.log)")

        // Ours finds the protected fields in both forms (and alice, the protected From, passes).
        let verifier = MessageVerifier(trust: try TrustStore(anchors: [pki.rootPEM]))
        for bytes in [message, opaqueMessage] {
            let report = verifier.verify(message: bytes, at: Date())
            #expect(report.integrity == .intact)
            #expect(report.result == .pass || signer != "alice", "\(report.reason ?? "")")
            #expect(report.protectedHeaders?.form == .clear)
            #expect(report.protectedHeaders?.fields.first(named: "Subject") != nil)
        }
    }

    /// Bouncy Castle (Java, bcpkix) verifies the header-protected signature too, detached and
    /// opaque, with the path to the test root (Tests/fixtures/BCVerify.java); a changed byte fails.
    @Test(.enabled(if: BCVerifier.isAvailable))
    func bouncyCastleAcceptsIt() throws {
        let pki = try TestPKI.get()
        let identity = try pki.identity("alice")
        let entity = try Self.entity()
        let detached = try CMSSigner.sign(content: entity, identity: identity, digest: .sha256, detached: true)
        let verdict = try BCVerifier.verify(signature: detached, content: entity, root: pki.rootPEM)
        #expect(verdict.valid, "\(verdict.log)")
        let opaque = try CMSSigner.sign(content: entity, identity: identity, digest: .sha256, detached: false)
        #expect(try BCVerifier.verify(signature: opaque, content: nil, root: pki.rootPEM).valid)
        var changed = entity
        changed[changed.count - 3] ^= 0x01
        #expect(!(try BCVerifier.verify(signature: detached, content: changed, root: pki.rootPEM).valid))
    }
}

/// Bouncy Castle through `java` running Tests/fixtures/BCVerify.java (Debian's libbcpkix-java).
enum BCVerifier {
    static let jars = ["bcprov", "bcpkix", "bcutil"].map { "/usr/share/java/\($0).jar" }

    static var isAvailable: Bool {
        jars.allSatisfy { FileManager.default.fileExists(atPath: $0) }
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/java")
    }

    static func verify(signature: [UInt8], content: [UInt8]?, root: String) throws -> Verdict {
        let scratch = try TemporaryDirectory(prefix: "bc")
        var arguments = ["-cp", jars.joined(separator: ":"), TestPKI.repositoryRoot + "/Tests/fixtures/BCVerify.java",
                         root, try scratch.write("sig.der", signature)]
        if let content { arguments.append(try scratch.write("content", content)) }
        let result = try Subprocess.run("java", arguments)
        return Verdict(valid: result.status == 0 && result.stdout.contains("VALID signers="), content: [], log: result.combined)
    }
}
