// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Testing
@testable import SMIME

/// CMSDecryptor and MessageDecryptor: our own envelopes and openssl's, each cause of failure.
@Suite("Decryption")
struct DecryptionTests {
    static let limit = 10_000_000

    static func recipient(_ identity: SigningIdentity) throws -> RecipientCertificate {
        let pem = try [UInt8](Data(contentsOf: URL(fileURLWithPath: identity.sourceFiles[0])))
        return try #require(try RecipientCertificate.certificates(pem: pem).first)
    }

    static func message(der: [UInt8], authenticated: Bool) -> (fields: [HeaderField], body: [UInt8]) {
        let wrapped = SMIMEWriter.enveloped(der: der, authenticated: authenticated)
        let fields = [HeaderField(name: "From", value: " dave@partner.example"), HeaderField(name: "To", value: " alice@example.com"),
                      HeaderField(name: "Subject", value: " secret"), HeaderField(name: "MIME-Version", value: " 1.0"),
                      HeaderField(name: "Content-Type", value: " " + wrapped.contentType),
                      HeaderField(name: "Content-Transfer-Encoding", value: " " + wrapped.contentTransferEncoding)]
        return (fields, wrapped.body)
    }

    /// `openssl cms -encrypt` of `content` to the certificate file, DER out.
    static func opensslEncrypt(_ content: [UInt8], to certificate: String, options: [String]) throws -> [UInt8] {
        let scratch = try TemporaryDirectory(prefix: "decrypt")
        let input = scratch.path + "/in", output = scratch.path + "/out.der"
        try Data(content).write(to: URL(fileURLWithPath: input))
        let result = try Subprocess.run("openssl", ["cms", "-encrypt", "-binary", "-in", input, "-outform", "DER", "-out", output,
                                                          "-recip", certificate] + options)
        guard result.status == 0 else { throw TestFailure("openssl cms -encrypt: \(result.combined)") }
        return try [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))
    }

    @Test(arguments: RSAKeyTransport.allCases, ContentCipher.allCases)
    func opensOwnRSAEnvelopes(transport: RSAKeyTransport, cipher: ContentCipher) throws {
        let alice = try TestPKI.get().identity("alice"), bob = try TestPKI.get().identity("bob")
        let der = try CMSEncryptor.encrypt(content: Samples.multipart, recipients: [try Self.recipient(alice)],
                                           cipher: cipher, rsaKeyTransport: transport)
        let opened = try CMSDecryptor.decrypt(der, candidates: [bob, alice], maximumSize: Self.limit)
        #expect(opened.content == Samples.multipart)
        #expect(opened.identityName == "alice")
        #expect(opened.certificateSerialHex == alice.serialHex)
        #expect(opened.isAuthenticated == cipher.isAuthenticated)
        #expect(opened.cipher == (cipher.isAuthenticated ? "id-aes256-GCM" : "AES-256-CBC"))
        #expect(opened.keyAlgorithm == (transport == .oaep ? "RSAES-OAEP" : "rsaEncryption"))
    }

    @Test(arguments: ContentCipher.allCases)
    func opensECDHEnvelopes(cipher: ContentCipher) throws {
        let alice = try TestPKI.get().identity("alice"), bob = try TestPKI.get().identity("bob")
        let der = try CMSEncryptor.encrypt(content: Samples.text, recipients: [try Self.recipient(bob)], cipher: cipher)
        let opened = try CMSDecryptor.decrypt(der, candidates: [alice, bob], maximumSize: Self.limit)
        #expect(opened.content == Samples.text)
        #expect(opened.identityName == "bob")
        #expect(opened.keyAlgorithm.hasPrefix("dhSinglePass"), "\(opened.keyAlgorithm)")
    }

    @Test(arguments: [["-aes128"], ["-keyopt", "rsa_padding_mode:oaep", "-aes256"], ["-aes-256-gcm"], ["-aes192", "-keyid"], ["-aes-128-gcm", "-stream", "-indef"]])
    func opensOpenSSLEnvelopes(options: [String]) throws {
        let alice = try TestPKI.get().identity("alice")
        let der = try Self.opensslEncrypt(Samples.text, to: alice.sourceFiles[0], options: options)
        let opened = try CMSDecryptor.decrypt(der, candidates: [alice], maximumSize: Self.limit)
        #expect(opened.content == Samples.text)
    }

    @Test func refusesTripleDESUnlessAllowed() throws {
        let alice = try TestPKI.get().identity("alice")
        let der = try Self.opensslEncrypt(Samples.text, to: alice.sourceFiles[0], options: ["-des3"])
        #expect(throws: DecryptionFailure.self) { try CMSDecryptor.decrypt(der, candidates: [alice], maximumSize: Self.limit) }
        do {
            _ = try CMSDecryptor.decrypt(der, candidates: [alice], maximumSize: Self.limit)
        } catch {
            #expect(error.cause == .refusedCipher)
            #expect(error.reason.contains("DES-EDE3-CBC"), "\(error.reason)")
        }
        let opened = try CMSDecryptor.decrypt(der, candidates: [alice], allowWeakCiphers: true, maximumSize: Self.limit)
        #expect(opened.content == Samples.text)
    }

    static func cause(_ body: () throws -> Void) -> DecryptionFailureCause? {
        do { try body() } catch { return (error as? DecryptionFailure)?.cause }
        return nil
    }

    @Test func failureCauses() throws {
        let alice = try TestPKI.get().identity("alice"), bob = try TestPKI.get().identity("bob")
        let toAlice = try CMSEncryptor.encrypt(content: Samples.text, recipients: [try Self.recipient(alice)])
        #expect(Self.cause { _ = try CMSDecryptor.decrypt(toAlice, candidates: [bob], maximumSize: Self.limit) } == .noKey)
        #expect(Self.cause { _ = try CMSDecryptor.decrypt(toAlice, candidates: [alice], maximumSize: 10) } == .tooLarge)
        #expect(Self.cause { _ = try CMSDecryptor.decrypt(Array(toAlice.prefix(100)), candidates: [alice], maximumSize: Self.limit) } == .corrupt)
        #expect(Self.cause { _ = try CMSDecryptor.decrypt([0x30, 0x03, 0x02, 0x01, 0x00], candidates: [alice], maximumSize: Self.limit) } == .corrupt)
        // A signature is not an envelope.
        let signed = try CMSSigner.sign(content: Samples.text, identity: alice, digest: .sha256, detached: false)
        #expect(Self.cause { _ = try CMSDecryptor.decrypt(signed, candidates: [alice], maximumSize: Self.limit) } == .corrupt)

        // AES-GCM: one flipped byte near the end (in the ciphertext or the tag) fails the tag check.
        var gcm = try CMSEncryptor.encrypt(content: Samples.multipart, recipients: [try Self.recipient(alice)], cipher: .aes256GCM)
        gcm[gcm.count - 5] ^= 0x01
        #expect(Self.cause { _ = try CMSDecryptor.decrypt(gcm, candidates: [alice], maximumSize: Self.limit) } == .integrity)
    }

    @Test func expiredIdentityStillOpensOldMail() throws {
        let expired = try IdentityLoader.load(name: "expired", directory: TestPKI.get().bad, allowExpired: true)
        let der = try CMSEncryptor.encrypt(content: Samples.text, recipients: [try Self.recipient(expired)])
        let opened = try CMSDecryptor.decrypt(der, candidates: [expired], maximumSize: Self.limit)
        #expect(opened.identityName == "expired")
    }

    @Test func messageRootIsOpenedAndNestedLayersBounded() throws {
        let alice = try TestPKI.get().identity("alice")
        let inner = try CMSEncryptor.encrypt(content: Samples.multipart, recipients: [try Self.recipient(alice)])
        let (fields, body) = Self.message(der: inner, authenticated: false)
        let opened = try #require(try MessageDecryptor.decrypt(fields: fields, body: body, candidates: [alice], maximumSize: Self.limit))
        #expect(opened.layers.count == 1)
        #expect(opened.fields.first(named: "Content-Type")?.value.contains("multipart/mixed") == true)
        let entity = try MIMEParser.parse(message: Samples.multipart)
        #expect(opened.body == Array(entity.body))

        // Encrypted inside encrypted: two layers, or tooDeep with a limit of one.
        let wrapped = SMIMEWriter.enveloped(der: inner, authenticated: false)
        let entityBytes = Array(("Content-Type: " + wrapped.contentType + "\r\nContent-Transfer-Encoding: base64\r\n\r\n").utf8) + wrapped.body
        let outer = try CMSEncryptor.encrypt(content: entityBytes, recipients: [try Self.recipient(alice)])
        let (f2, b2) = Self.message(der: outer, authenticated: false)
        let twice = try #require(try MessageDecryptor.decrypt(fields: f2, body: b2, candidates: [alice], maximumSize: Self.limit))
        #expect(twice.layers.count == 2)
        #expect(twice.body == Array(entity.body))
        #expect(Self.cause { _ = try MessageDecryptor.decrypt(fields: f2, body: b2, candidates: [alice], maximumSize: Self.limit, maximumLayers: 1) } == .tooDeep)
    }

    @Test func encryptedPartAmongOtherPartsIsNotOpened() throws {
        let alice = try TestPKI.get().identity("alice")
        let der = try CMSEncryptor.encrypt(content: Samples.text, recipients: [try Self.recipient(alice)])
        let wrapped = SMIMEWriter.enveloped(der: der, authenticated: false)
        let body = Array(("--b\r\nContent-Type: text/plain\r\n\r\nClick: <img src=\"http://evil/\r\n--b\r\nContent-Type: "
                          + wrapped.contentType + "\r\nContent-Transfer-Encoding: base64\r\n\r\n").utf8)
            + wrapped.body + Array("\r\n--b--\r\n".utf8)
        let fields = [HeaderField(name: "Content-Type", value: " multipart/mixed; boundary=b")]
        #expect(try MessageDecryptor.decrypt(fields: fields, body: body, candidates: [alice], maximumSize: Self.limit) == nil)
        // A signed (not encrypted) message is not an envelope either.
        #expect(try MessageDecryptor.decrypt(fields: [HeaderField(name: "Content-Type", value: " text/plain")], body: Array("hi\r\n".utf8),
                                             candidates: [alice], maximumSize: Self.limit) == nil)
    }
}
