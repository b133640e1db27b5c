// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Policy
import SMIME
import Testing

/// The DecryptionTable and the inbound decryption decisions of MessagePolicy, with real
/// envelopes (CMSEncryptor) and the real verifier over the test PKI.
@Suite("Decryption policy")
struct DecryptionPolicyTests {
    static let pki: Result<String, any Error> = Result {
        let directory = FileManager.default.temporaryDirectory.path + "/decrypt-pki-" + UUID().uuidString
        let (status, output) = try VerdictMatrixTests.run("python3", [repositoryRoot.path + "/Tests/fixtures/make_test_pki.py", directory])
        guard status == 0 else { throw VerdictMatrixTests.MatrixError("make_test_pki.py failed: \(output)") }
        return directory
    }

    static func identity(_ name: String) throws -> SigningIdentity {
        try IdentityLoader.load(name: name, directory: try pki.get() + "/certs")
    }

    static func certificate(_ identity: SigningIdentity) throws -> RecipientCertificate {
        let pem = try [UInt8](Data(contentsOf: URL(fileURLWithPath: identity.sourceFiles[0])))
        return try #require(try RecipientCertificate.certificates(pem: pem).first)
    }

    static let table = try! DecryptionTable.parse(contents: "keeper@example.com keep\n*@example.com decrypt\n", file: "decryption.table")

    func policy(onError: DecryptionErrorAction = .accept) throws -> MessagePolicy {
        var config = verificationConfiguration(mode: [.sign, .verify])
        config.decryption.onError = onError
        let signing = SigningPolicy(configuration: config, identities: IdentityStore(identities: []))
        let verifier = MessageVerifier(trust: try TrustStore(anchors: [try Self.pki.get() + "/trust.pem"]))
        let keys = [try Self.identity("alice"), try Self.identity("bob")]
        return MessagePolicy(signing: signing, verification: VerificationPolicy(configuration: config, verifier: verifier),
                             decryption: DecryptionSetup(table: Self.table, settings: config.decryption, keys: keys))
    }

    static let inner = Array("Content-Type: text/plain; charset=us-ascii\r\n\r\nThe secret plan.\r\n".utf8)

    /// A message from bob@example.com, `content` encrypted to `to`.
    func encryptedMessage(_ content: [UInt8], to: [SigningIdentity], recipients: [String], cipher: ContentCipher = .aes256CBC,
                          extraFields: [HeaderField] = []) throws -> MessageContext {
        let der = try CMSEncryptor.encrypt(content: content, recipients: try to.map(Self.certificate), cipher: cipher)
        let wrapped = SMIMEWriter.enveloped(der: der, authenticated: cipher.isAuthenticated)
        var fields = [HeaderField(name: "Received", value: " from partner by mx"), HeaderField(name: "From", value: " bob@example.com"),
                      HeaderField(name: "To", value: " alice@example.com"), HeaderField(name: "Subject", value: " plan")]
        fields += extraFields
        fields += [HeaderField(name: "MIME-Version", value: " 1.0"), HeaderField(name: "Content-Type", value: " " + wrapped.contentType),
                   HeaderField(name: "Content-Transfer-Encoding", value: " " + wrapped.contentTransferEncoding),
                   HeaderField(name: "Content-Disposition", value: " " + wrapped.contentDisposition)]
        return MessageContext(queueID: "Q1", connection: ConnectionInfo(clientAddress: "192.0.2.7"), envelopeSender: "<bob@example.com>",
                              recipients: recipients, fields: fields, body: wrapped.body)
    }

    func detail(_ outcome: PolicyOutcome, _ key: String) -> String? { outcome.details.first { $0.0 == key }?.1 }

    @Test func tableParsesAndRefusesBadLines() throws {
        #expect(Self.table.match("<KEEPER@example.com>")?.decryption == .keep)
        #expect(Self.table.match("alice@example.com")?.decryption == .decrypt)
        #expect(Self.table.match("alice@example.org") == nil)
        #expect(throws: ConfigurationError.self) { try DecryptionTable.parse(contents: "*@example.com open\n", file: "t") }
        #expect(throws: ConfigurationError.self) { try DecryptionTable.parse(contents: "* keep\na@b decrypt\n", file: "t") }
        #expect(throws: ConfigurationError.self) { try DecryptionTable.parse(contents: "a@b decrypt extra\n", file: "t") }
        let config = try parseConfig("OnDecryptionError tempfail\nDecryptionWeakCiphers accept\nDecryptionMaxSize 2M\n")
        #expect(config.decryption.onError == .tempfail)
        #expect(config.decryption.allowWeakCiphers)
        #expect(config.decryption.maximumSize == 2 << 20)
        #expect(throws: (any Error).self) { try parseConfig("OnDecryptionError drop\n") }
    }

    @Test func mixedClassesAreSplitAtRecipient() throws {
        let policy = try policy()
        let envelope = inboundMessage()
        let first = policy.atRecipient("<alice@example.com>", envelope: envelope, transactionClass: nil, now: Date())
        #expect(first.action == .accept)
        let decryptClass = try #require(first.recipientClass)
        let outside = policy.atRecipient("<carol@partner.example>", envelope: envelope, transactionClass: decryptClass, now: Date())
        #expect(outside.action.reply?.code == "452")
        #expect(outside.action.reply?.xcode == "4.5.3")
        #expect(outside.refusal == "class_split")
        #expect(policy.atRecipient("<bob@example.com>", envelope: envelope, transactionClass: decryptClass, now: Date()).action == .accept)
        // keep and unlisted share a class: both stay encrypted.
        let kept = try #require(policy.atRecipient("keeper@example.com", envelope: envelope, transactionClass: nil, now: Date()).recipientClass)
        #expect(policy.atRecipient("x@partner.example", envelope: envelope, transactionClass: kept, now: Date()).action == .accept)
    }

    @Test func decryptsVerifiesAndSaysSo() throws {
        let alice = try Self.identity("alice"), bob = try Self.identity("bob")
        // Signed by bob inside (opaque), encrypted to alice.
        let signed = try CMSSigner.sign(content: Self.inner, identity: bob, digest: .sha256, detached: false)
        let opaque = SMIMEWriter.opaque(signedData: signed)
        let entity = Array(("Content-Type: " + opaque.contentType + "\r\nContent-Transfer-Encoding: " + opaque.contentTransferEncoding
                            + "\r\n\r\n").utf8) + opaque.body
        for cipher in ContentCipher.allCases {
            let message = try encryptedMessage(entity, to: [alice], recipients: ["<alice@example.com>"], cipher: cipher,
                                               extraFields: [HeaderField(name: "X-SMIME-Decrypted", value: " yes (forged)")])
            let outcome = try policy().evaluate(message, now: Date())
            #expect(outcome.action == .accept)
            #expect(detail(outcome, "decryption") == "decrypted")
            #expect(detail(outcome, "decrypt_identity") == "alice")
            let out = try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
            let decryptedFields = out.fields.filter { $0.hasName("X-SMIME-Decrypted") }
            #expect(decryptedFields.count == 1)
            #expect(decryptedFields.first?.value.hasPrefix(" yes (by mx.example.net; identity alice;") == true, "\(decryptedFields)")
            #expect(out.fields.first(named: "Content-Type")?.value.contains("signed-data") == true)
            #expect(out.body == opaque.body)
            let ar = try #require(out.fields.first(named: "Authentication-Results")?.value)
            #expect(ar.contains("smime=pass"), "\(ar)")
            #expect(outcome.decision == .verified(result: .pass, reason: nil))
        }
    }

    @Test func keepLeavesItEncryptedAndSaysSo() throws {
        let alice = try Self.identity("alice")
        let message = try encryptedMessage(Self.inner, to: [alice], recipients: ["keeper@example.com"])
        let outcome = try policy().evaluate(message, now: Date())
        let out = try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
        #expect(out.body == (try message.body.bytes()))
        #expect(out.fields.first(named: "X-SMIME-Decrypted")?.value == " no (kept: keep)")
        #expect(detail(outcome, "decryption") == "kept")
    }

    @Test func failuresGoOnAsTheyCameOrAsConfigured() throws {
        let alice = try Self.identity("alice"), bob = try Self.identity("bob")
        // Encrypted to bob's certificate only, sent to alice: alice's key is not named.
        let notForAlice = try encryptedMessage(Self.inner, to: [bob], recipients: ["alice@example.com"])
        let accepted = try policy().evaluate(notForAlice, now: Date())
        #expect(accepted.action == .accept)
        #expect(detail(accepted, "decrypt_cause") == "no_key")
        let out = try MessageEditor.apply(accepted.edits, fields: notForAlice.fields, body: notForAlice.body)
        #expect(out.body == (try notForAlice.body.bytes()))
        #expect(out.fields.first(named: "X-SMIME-Decrypted")?.value.hasPrefix(" failed (cause=no_key;") == true)
        #expect(out.fields.first(named: "Authentication-Results")?.value.contains("smime=none") == true)

        let tempfail = try policy(onError: .tempfail).evaluate(notForAlice, now: Date())
        #expect(tempfail.action.reply?.code == "451")
        #expect(tempfail.action.reply?.xcode == "4.7.5")
        let reject = try policy(onError: .reject).evaluate(notForAlice, now: Date())
        #expect(reject.action.reply?.code == "550")
        #expect(reject.action.reply?.xcode == "5.7.5")

        // Encrypted to alice only, sent to alice and bob: bob must not get alice's plaintext.
        let shared = try encryptedMessage(Self.inner, to: [alice], recipients: ["alice@example.com", "bob@example.com"])
        let sharedOutcome = try policy().evaluate(shared, now: Date())
        #expect(detail(sharedOutcome, "decrypt_cause") == "no_key")
        #expect(!sharedOutcome.edits.contains { if case .replaceBody = $0 { return true } else { return false } })

        // Tampered AES-GCM: integrity.
        var gcm = try encryptedMessage(Self.inner, to: [alice], recipients: ["alice@example.com"], cipher: .aes256GCM)
        let entity = try MIMEParser.parse(fields: gcm.fields, body: try gcm.body.bytes())
        var der = entity.decodedBody
        der[der.count - 3] ^= 0x40
        gcm.body = .memory(Base64Lines.encode(der))
        let tampered = try policy().evaluate(gcm, now: Date())
        #expect(detail(tampered, "decrypt_cause") == "integrity")
    }

    /// A message from bob to alice whose root is `contentType` over `body` (a signed layer).
    func signedLayerMessage(contentType: String, body: [UInt8], cte: String? = nil) -> MessageContext {
        var fields = [HeaderField(name: "From", value: " bob@example.com"), HeaderField(name: "To", value: " alice@example.com"),
                      HeaderField(name: "Subject", value: " plan"), HeaderField(name: "MIME-Version", value: " 1.0"),
                      HeaderField(name: "Content-Type", value: " " + contentType)]
        if let cte { fields.append(HeaderField(name: "Content-Transfer-Encoding", value: " " + cte)) }
        return MessageContext(queueID: "Q2", connection: ConnectionInfo(clientAddress: "192.0.2.7"), envelopeSender: "<bob@example.com>",
                              recipients: ["<alice@example.com>"], fields: fields, body: .memory(body))
    }

    /// The envelope entity (its own header and body) of `content` encrypted to `to`.
    func envelopeEntity(_ content: [UInt8], to: SigningIdentity) throws -> [UInt8] {
        let der = try CMSEncryptor.encrypt(content: content, recipients: [try Self.certificate(to)], cipher: .aes256CBC)
        let wrapped = SMIMEWriter.enveloped(der: der, authenticated: false)
        return Array(("Content-Type: " + wrapped.contentType + "\r\nContent-Transfer-Encoding: " + wrapped.contentTransferEncoding
                      + "\r\n\r\n").utf8) + wrapped.body
    }

    @Test func encryptThenSignIsOpenedAndTheOuterSignatureReportedApart() throws {
        let alice = try Self.identity("alice"), bob = try Self.identity("bob")
        let envelope = try envelopeEntity(Self.inner, to: alice)
        let signature = try CMSSigner.sign(content: envelope, identity: bob, digest: .sha256, detached: true)
        let signed = try SMIMEWriter.multipartSigned(entity: envelope, signature: signature, digest: .sha256)
        let message = signedLayerMessage(contentType: signed.contentType, body: signed.body)
        let outcome = try policy().evaluate(message, now: Date())
        #expect(detail(outcome, "decryption") == "decrypted")
        #expect(detail(outcome, "outer_signature") == "pass")
        let out = try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
        #expect(out.body == Array("The secret plan.\r\n".utf8))
        #expect(out.fields.first(named: "Content-Type")?.value == " text/plain; charset=us-ascii")
        let ar = try #require(out.fields.first(named: "Authentication-Results")?.value)
        // What is delivered is not signed; the signature over the ciphertext is a second result.
        let results = ar.replacingOccurrences(of: "\n\t", with: " ").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(results.count == 3, "\(ar)")
        #expect(results.dropFirst().first?.hasPrefix("smime=none") == true, "\(ar)")
        #expect(results.last?.hasPrefix("smime=pass (signature over the encrypted message, removed when decrypted)") == true, "\(ar)")
        #expect(outcome.decision == .verified(result: .none, reason: "the message is not signed"))

        // The signed layer altered in transit: decrypted all the same, the outer result says fail.
        var tampered = signed.body
        let at = try #require(tampered.firstRange(of: Array("Content-Transfer-Encoding: base64\r\n\r\n".utf8))).upperBound
        tampered.insert(contentsOf: Array("\r\n".utf8), at: at + 8)
        let altered = try policy().evaluate(signedLayerMessage(contentType: signed.contentType, body: tampered), now: Date())
        #expect(detail(altered, "decryption") == "decrypted")
        #expect(detail(altered, "outer_signature") == "fail")
    }

    @Test func tripleWrapIsOpenedToTheInnerSignature() throws {
        let alice = try Self.identity("alice"), bob = try Self.identity("bob")
        let innerSigned = SMIMEWriter.opaque(signedData: try CMSSigner.sign(content: Self.inner, identity: bob, digest: .sha256, detached: false))
        let innerEntity = Array(("Content-Type: " + innerSigned.contentType + "\r\nContent-Transfer-Encoding: "
                                 + innerSigned.contentTransferEncoding + "\r\n\r\n").utf8) + innerSigned.body
        let envelope = try envelopeEntity(innerEntity, to: alice)
        let outer = SMIMEWriter.opaque(signedData: try CMSSigner.sign(content: envelope, identity: bob, digest: .sha256, detached: false))
        let message = signedLayerMessage(contentType: outer.contentType, body: outer.body, cte: outer.contentTransferEncoding)
        let outcome = try policy().evaluate(message, now: Date())
        #expect(detail(outcome, "decryption") == "decrypted")
        #expect(detail(outcome, "outer_signature") == "pass")
        #expect(outcome.decision == .verified(result: .pass, reason: nil))
        let out = try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
        #expect(out.body == innerSigned.body)
        #expect(out.fields.first(named: "Content-Type")?.value.contains("signed-data") == true)
        let ar = try #require(out.fields.first(named: "Authentication-Results")?.value)
        let flat = ar.replacingOccurrences(of: "\n\t", with: " ")
        #expect(flat.contains("; smime=pass body.smime-identifier=bob@example.com"), "\(ar)")
        #expect(flat.contains("; smime=pass (signature over the encrypted message, removed when decrypted)"), "\(ar)")

        // Kept: the message stays as it came, its outer signature verified as today.
        var kept = message
        kept.recipients = ["keeper@example.com"]
        let keptOutcome = try policy().evaluate(kept, now: Date())
        #expect(detail(keptOutcome, "decryption") == "kept")
        let keptOut = try MessageEditor.apply(keptOutcome.edits, fields: kept.fields, body: kept.body)
        #expect(keptOut.body == outer.body)
    }

    @Test func anEncryptedPartBesideOthersIsNeverOpened() throws {
        // EFAIL: the attacker's text around an encrypted part the victim's key would open.
        let alice = try Self.identity("alice")
        let envelope = try envelopeEntity(Self.inner, to: alice)
        let body = Array("--b\r\nContent-Type: text/html\r\n\r\n<img src=\"http://evil.example/\r\n--b\r\n".utf8) + envelope
            + Array("\r\n--b--\r\n".utf8)
        let message = signedLayerMessage(contentType: "multipart/mixed; boundary=b", body: body)
        let outcome = try policy().evaluate(message, now: Date())
        #expect(detail(outcome, "decryption") == nil)
        let out = try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
        #expect(out.body == body)
    }

    @Test func unencryptedMailOnlyLosesForgedFields() throws {
        var message = inboundMessage(extraFields: [HeaderField(name: "X-SMIME-Decrypted", value: " yes")])
        message.recipients = ["alice@example.com"]
        let outcome = try policy().evaluate(message, now: Date())
        let out = try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
        #expect(out.fields.first(named: "X-SMIME-Decrypted") == nil)
        #expect(out.body == (try message.body.bytes()))
    }
}
