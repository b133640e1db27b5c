// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Testing
@testable import SMIME

/// CMSEncryptor's output, decrypted by implementations we did not write.
@Suite("Encryption")
struct EncryptionTests {
    static let entities: [(String, [UInt8])] = [("text", Samples.text), ("multipart", Samples.multipart)]

    static func recipient(_ name: String) throws -> (certificate: RecipientCertificate, pem: String) {
        let path = try TestPKI.get().enc + "/\(name).pem"
        let pem = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let first = try #require(try RecipientCertificate.certificates(pem: pem).first)
        return (first, path)
    }

    /// A signed-then-encrypted shaped entity: an opaque signed message as the inner content.
    static func signedEntity() throws -> [UInt8] {
        let identity = try TestPKI.get().identity("alice")
        let signed = try CMSSigner.sign(content: Samples.multipart, identity: identity, digest: .sha256, detached: false)
        let wrapped = SMIMEWriter.opaque(signedData: signed)
        return Array(("Content-Type: " + wrapped.contentType + "\r\nContent-Transfer-Encoding: base64\r\n"
                      + "Content-Disposition: " + wrapped.contentDisposition + "\r\n\r\n").utf8) + wrapped.body
    }

    @Test(arguments: RSAKeyTransport.allCases, ContentCipher.allCases)
    func openSSLDecryptsRSA(transport: RSAKeyTransport, cipher: ContentCipher) throws {
        let dave = try Self.recipient("dave")
        for (label, entity) in Self.entities + [("signed", try Self.signedEntity())] {
            let der = try CMSEncryptor.encrypt(content: entity, recipients: [dave.certificate], cipher: cipher,
                                               rsaKeyTransport: transport)
            let result = try OpenSSLDecrypter.decrypt(der: der, recipientPEM: dave.pem)
            #expect(result.ok, "\(label): \(result.log)")
            #expect(result.content == entity, "\(label): decrypted bytes differ")
            let printed = try OpenSSLDecrypter.print(der: der)
            #expect(printed.contains(cipher.isAuthenticated ? "contentType: id-smime-ct-authEnvelopedData" : "contentType: pkcs7-envelopedData"), "\(printed.prefix(300))")
            #expect(printed.contains(cipher.isAuthenticated ? "aes-256-gcm" : "aes-256-cbc"))
            #expect(printed.contains(transport == .oaep ? "rsaesOaep" : "rsaEncryption"))
        }
    }

    @Test(arguments: ContentCipher.allCases)
    func openSSLDecryptsECDH(cipher: ContentCipher) throws {
        let erin = try Self.recipient("erin")
        let der = try CMSEncryptor.encrypt(content: Samples.multipart, recipients: [erin.certificate], cipher: cipher)
        let result = try OpenSSLDecrypter.decrypt(der: der, recipientPEM: erin.pem)
        #expect(result.ok, "\(result.log)")
        #expect(result.content == Samples.multipart)
        let printed = try OpenSSLDecrypter.print(der: der)
        #expect(printed.contains("d.kari:"), "ECDH needs a KeyAgreeRecipientInfo")
    }

    @Test func wholeMessageDecryptsAsAMailClientGetsIt() throws {
        let dave = try Self.recipient("dave")
        for cipher in ContentCipher.allCases {
            let der = try CMSEncryptor.encrypt(content: Samples.text, recipients: [dave.certificate], cipher: cipher)
            let wrapped = SMIMEWriter.enveloped(der: der, authenticated: cipher.isAuthenticated)
            let message = Array(("From: alice@example.com\r\nTo: dave@partner.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
                                 + "Content-Type: " + wrapped.contentType + "\r\n"
                                 + "Content-Transfer-Encoding: " + wrapped.contentTransferEncoding + "\r\n"
                                 + "Content-Disposition: " + wrapped.contentDisposition + "\r\n\r\n").utf8) + wrapped.body
            let result = try OpenSSLDecrypter.decrypt(message: message, recipientPEM: dave.pem)
            #expect(result.ok, "\(cipher): \(result.log)")
            #expect(result.content == Samples.text)
            #expect(wrapped.contentType == "application/pkcs7-mime; smime-type="
                    + (cipher.isAuthenticated ? "authEnveloped-data" : "enveloped-data") + "; name=\"smime.p7m\"")
            // 7-bit base64 lines of at most 76 characters, CRLF.
            let lines = String(decoding: wrapped.body, as: UTF8.self).components(separatedBy: "\r\n")
            #expect(lines.allSatisfy { $0.count <= 76 })
            #expect(!wrapped.body.contains(0x0A) || wrapped.body.indices.allSatisfy { i in wrapped.body[i] != 0x0A || (i > 0 && wrapped.body[i - 1] == 0x0D) })
        }
    }

    @Test func severalRecipientsAndArchiveEachDecrypt() throws {
        let dave = try Self.recipient("dave"), erin = try Self.recipient("erin"), archive = try Self.recipient("archive")
        let der = try CMSEncryptor.encrypt(content: Samples.multipart,
                                           recipients: [dave.certificate, erin.certificate, archive.certificate])
        for who in [dave, erin, archive] {
            let result = try OpenSSLDecrypter.decrypt(der: der, recipientPEM: who.pem)
            #expect(result.ok && result.content == Samples.multipart, "\(who.pem): \(result.log)")
        }
        // Someone not among the recipients cannot.
        let mallory = try Self.recipient("mallory")
        #expect(!(try OpenSSLDecrypter.decrypt(der: der, recipientPEM: mallory.pem)).ok)
    }

    @Test func nssDecryptsRSAPKCS1() throws {
        let dave = try Self.recipient("dave")
        for (label, entity) in Self.entities {
            let der = try CMSEncryptor.encrypt(content: entity, recipients: [dave.certificate, try Self.recipient("archive").certificate])
            let result = try NSSDecrypter.decrypt(der: der, recipientPEM: dave.pem)
            #expect(result.ok, "\(label): \(result.log)")
            #expect(result.content == entity, "\(label)")
        }
    }

    @Test func gpgsmDecryptsRSAPKCS1() throws {
        let dave = try Self.recipient("dave")
        let entity = try Self.signedEntity()
        let der = try CMSEncryptor.encrypt(content: entity, recipients: [try Self.recipient("erin").certificate, dave.certificate])
        let result = try GPGSMDecrypter.decrypt(der: der, recipientPEM: dave.pem)
        #expect(result.ok, "\(result.log)")
        #expect(result.content == entity)
    }

    /// Bouncy Castle decrypts what NSS and gpgsm cannot: GCM, OAEP and ECDH, several recipients.
    @Test(arguments: ContentCipher.allCases, RSAKeyTransport.allCases)
    func bouncyCastleDecrypts(cipher: ContentCipher, transport: RSAKeyTransport) throws {
        let dave = try Self.recipient("dave"), erin = try Self.recipient("erin")
        let entity = try Self.signedEntity()
        let der = try CMSEncryptor.encrypt(content: entity, recipients: [dave.certificate, erin.certificate],
                                           cipher: cipher, rsaKeyTransport: transport)
        for who in [dave, erin] {
            let result = try BouncyCastleDecrypter.decrypt(der: der, recipientPEM: who.pem)
            #expect(result.ok, "\(who.pem): \(result.log)")
            #expect(result.content == entity)
            #expect(result.log.contains(cipher.isAuthenticated ? "authEnvelopedData" : "envelopedData"))
        }
    }

    /// What the other implementations on Debian 12 cannot decrypt, so that the defaults stay
    /// PKCS#1 v1.5 and CBC: if one of these starts to pass, the documentation should say so.
    @Test func limitsOfTheOtherImplementations() throws {
        let dave = try Self.recipient("dave"), erin = try Self.recipient("erin")
        let oaep = try CMSEncryptor.encrypt(content: Samples.text, recipients: [dave.certificate], rsaKeyTransport: .oaep)
        #expect(!(try NSSDecrypter.decrypt(der: oaep, recipientPEM: dave.pem)).ok, "NSS 3.87 now decrypts RSA-OAEP")
        #expect(!(try GPGSMDecrypter.decrypt(der: oaep, recipientPEM: dave.pem)).ok, "gpgsm 2.2 now decrypts RSA-OAEP")
        let gcm = try CMSEncryptor.encrypt(content: Samples.text, recipients: [dave.certificate], cipher: .aes256GCM)
        #expect(!(try NSSDecrypter.decrypt(der: gcm, recipientPEM: dave.pem)).ok, "NSS 3.87 now decrypts AuthEnvelopedData")
        let ecdh = try CMSEncryptor.encrypt(content: Samples.text, recipients: [erin.certificate])
        #expect(!(try NSSDecrypter.decrypt(der: ecdh, recipientPEM: erin.pem)).ok, "NSS 3.87 now decrypts ECDH")
    }

    @Test func refusesNoRecipientAndUnusableKeys() throws {
        #expect(throws: SMIMEError.self) { try CMSEncryptor.encrypt(content: Samples.text, recipients: []) }
    }

    @Test func recipientCertificateFacts() throws {
        let dave = try Self.recipient("dave"), erin = try Self.recipient("erin")
        #expect(dave.certificate.keyKind == .rsa && dave.certificate.keyBits == 2048)
        #expect(erin.certificate.keyKind == .ec)
        #expect(dave.certificate.info.addresses == ["dave@partner.example"])
        #expect(dave.certificate.fingerprint.count == 64)
        let again = try RecipientCertificate(der: dave.certificate.der)
        #expect(again.fingerprint == dave.certificate.fingerprint)
        let fromPEM = try RecipientCertificate.certificates(pem: Array(dave.certificate.pem.utf8))
        #expect(fromPEM.map(\.fingerprint) == [dave.certificate.fingerprint])
        #expect(throws: SMIMEError.self) { try RecipientCertificate(der: [1, 2, 3]) }
    }
}

/// SMIMECapabilities and signer certificates read from signed mail.
@Suite("Harvest input")
struct SignerHarvestTests {
    @Test func capabilitiesOfOurOwnSignature() throws {
        let identity = try TestPKI.get().identity("alice")
        let (message, _) = try Samples.multipartSignedMessage(entity: Samples.text, identity: identity, digest: .sha256)
        let (fields, body) = try MessageParser.split(message)
        let candidates = SignerHarvest.candidates(fields: fields, body: body)
        #expect(candidates.count == 1)
        let first = try #require(candidates.first)
        #expect(first.certificate.info.addresses == ["alice@example.com"])
        #expect(first.weakness == nil)
        let caps = try #require(first.capabilities)
        #expect(caps.algorithms.first == SMIMECapabilities.aes256CBC, "\(caps.algorithms)")
        #expect(!caps.announcesAES256GCM)
    }

    @Test func opaqueAndSHA1Signatures() throws {
        let pki = try TestPKI.get()
        let scratch = try TemporaryDirectory(prefix: "harvest")
        let input = try scratch.write("in.txt", Samples.text)
        let out = scratch.path + "/out.eml"
        let signed = try Subprocess.run("openssl", ["cms", "-sign", "-nodetach", "-md", "sha1", "-in", input,
                                                    "-signer", pki.enc + "/dave.pem", "-out", out])
        #expect(signed.status == 0, "\(signed.combined)")
        let message = try [UInt8](Data(contentsOf: URL(fileURLWithPath: out)))
        let (fields, body) = try MessageParser.split(message)
        let first = try #require(SignerHarvest.candidates(fields: fields, body: body).first)
        #expect(first.certificate.info.addresses == ["dave@partner.example"])
        #expect(first.weakness?.contains("SHA-1") == true)
        #expect(first.capabilities?.algorithms.contains(SMIMECapabilities.aes256CBC) == true)
    }

    @Test func nothingFromUnsignedOrGarbage() throws {
        let (fields, body) = try MessageParser.split(Array("Subject: x\r\n\r\nhello\r\n".utf8))
        #expect(SignerHarvest.candidates(fields: fields, body: body).isEmpty)
        #expect(SignerHarvest.candidates(signedData: [0x30, 0x03, 0x02, 0x01, 0x00]).isEmpty)
        let dave = try EncryptionTests.recipient("dave")
        let enveloped = try CMSEncryptor.encrypt(content: Samples.text, recipients: [dave.certificate])
        #expect(SignerHarvest.candidates(signedData: enveloped).isEmpty)
    }

    @Test func capabilitiesAnnouncingGCMParsedFromDER() throws {
        // The attribute value as another client would send it, made by openssl's ASN.1 generator.
        let scratch = try TemporaryDirectory(prefix: "caps")
        let conf = try scratch.write("caps.cnf", Array("""
            asn1=SEQUENCE:caps
            [caps]
            c1=SEQUENCE:gcm
            c2=SEQUENCE:cbc
            c3=SEQUENCE:oaep
            [gcm]
            alg=OID:2.16.840.1.101.3.4.1.46
            [cbc]
            alg=OID:2.16.840.1.101.3.4.1.42
            [oaep]
            alg=OID:1.2.840.113549.1.1.7

            """.utf8))
        let out = scratch.path + "/caps.der"
        let made = try Subprocess.run("openssl", ["asn1parse", "-genconf", conf, "-out", out, "-noout"])
        #expect(made.status == 0, "\(made.combined)")
        let caps = try SMIMECapabilities(attributeValueDER: [UInt8](Data(contentsOf: URL(fileURLWithPath: out))))
        #expect(caps.algorithms == [SMIMECapabilities.aes256GCM, SMIMECapabilities.aes256CBC, SMIMECapabilities.rsaesOAEP])
        #expect(caps.announcesAES256GCM && caps.announcesRSAOAEP)
        let cbcOnly = SMIMECapabilities(algorithms: [SMIMECapabilities.aes256CBC])
        #expect(SMIMECapabilities.cipher(for: [caps]) == .aes256GCM)
        #expect(SMIMECapabilities.cipher(for: [caps, cbcOnly]) == .aes256CBC)
        #expect(SMIMECapabilities.cipher(for: [caps, nil]) == .aes256CBC)
        #expect(throws: SMIMEError.self) { try SMIMECapabilities(attributeValueDER: [0x04, 0x01, 0x00]) }
    }
}

/// The check at the point of use.
@Suite("Recipient certificate check")
struct RecipientCertificateCheckTests {
    static func load(_ file: String) throws -> (leaf: RecipientCertificate, intermediates: [RecipientCertificate]) {
        let pem = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        let all = try RecipientCertificate.certificates(pem: pem)
        return (all[0], Array(all.dropFirst()))
    }

    static func check() throws -> RecipientCertificateCheck {
        RecipientCertificateCheck(trust: try TrustStore(anchors: [try TestPKI.get().rootPEM]))
    }

    @Test(arguments: ["dave", "erin", "archive", "noeku"])
    func usable(name: String) throws {
        let (leaf, intermediates) = try Self.load(try TestPKI.get().enc + "/\(name).pem")
        #expect(try Self.check().problem(with: leaf, intermediates: intermediates, at: Date()) == nil)
    }

    @Test(arguments: [
        ("weakkey", "weak key: RSA-1024"), ("sha1", "signed with SHA-1"), ("nokeyenc", "keyEncipherment"),
        ("noagree", "keyAgreement"), ("codesign", "emailProtection"), ("expired", "expired"),
        ("mallory", "does not chain to a trusted root"),
    ])
    func unusable(name: String, reason: String) throws {
        let (leaf, intermediates) = try Self.load(try TestPKI.get().enc + "/\(name).pem")
        let problem = try Self.check().problem(with: leaf, intermediates: intermediates, at: Date())
        #expect(problem?.contains(reason) == true, "\(name): \(problem ?? "usable")")
    }

    @Test func withoutItsIntermediateTheChainIsIncomplete() throws {
        let (leaf, _) = try Self.load(try TestPKI.get().enc + "/dave.pem")
        #expect(try Self.check().problem(with: leaf, at: Date())?.contains("trusted root") == true)
    }

    @Test func laterThanTheValidityIsRefused() throws {
        let (leaf, intermediates) = try Self.load(try TestPKI.get().enc + "/dave.pem")
        let late = leaf.info.notAfter.addingTimeInterval(86_400)
        #expect(try Self.check().problem(with: leaf, intermediates: intermediates, at: late)?.contains("expired") == true)
    }

    struct RevokeEveryone: RecipientRevocationCheck {
        func problem(with certificate: RecipientCertificate, chain: [RecipientCertificate], at time: Date) -> String? {
            chain.count == 3 ? "revoked (test hook, chain of \(chain.count))" : "wrong chain \(chain.count)"
        }
    }

    @Test func revocationHookIsAskedLastWithTheChain() throws {
        let (leaf, intermediates) = try Self.load(try TestPKI.get().enc + "/dave.pem")
        let check = RecipientCertificateCheck(trust: try TrustStore(anchors: [try TestPKI.get().rootPEM]),
                                              revocation: RevokeEveryone())
        #expect(check.problem(with: leaf, intermediates: intermediates, at: Date()) == "revoked (test hook, chain of 3)")
        let (weak, weakChain) = try Self.load(try TestPKI.get().enc + "/weakkey.pem")
        #expect(check.problem(with: weak, intermediates: weakChain, at: Date())?.contains("weak key") == true)
    }

    @Test func harvestedCandidateCarriesItsIntermediate() throws {
        let identity = try TestPKI.get().identity("alice")
        let (message, _) = try Samples.multipartSignedMessage(entity: Samples.text, identity: identity, digest: .sha256)
        let (fields, body) = try MessageParser.split(message)
        let candidate = try #require(SignerHarvest.candidates(fields: fields, body: body).first)
        #expect(candidate.intermediates.count == 1)
        #expect(try Self.check().problem(with: candidate.certificate, intermediates: candidate.intermediates, at: Date()) == nil)
    }
}
