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

    @Test func unencryptedMailOnlyLosesForgedFields() throws {
        var message = inboundMessage(extraFields: [HeaderField(name: "X-SMIME-Decrypted", value: " yes")])
        message.recipients = ["alice@example.com"]
        let outcome = try policy().evaluate(message, now: Date())
        let out = try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
        #expect(out.fields.first(named: "X-SMIME-Decrypted") == nil)
        #expect(out.body == (try message.body.bytes()))
    }
}
