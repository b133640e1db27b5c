// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Policy
import SMIME
import Testing

/// The outbound decision as `MessagePolicy` makes it for the milter and `sign --rcpt`: sign with
/// the recipients' `sign=` choice, then encrypt; the certificates are checked at end-of-message.
@Suite("MessagePolicy: sign, then encrypt")
struct MessagePolicyEncryptionTests {
    static func policy(table: String, pki: String, store: MemoryRecipientStore) throws -> MessagePolicy {
        var config = Configuration(authservID: "mx.example.com")
        config.internalHosts = try NetworkList.parse(contents: "192.0.2.0/24\n", file: "internal")
        config.signingTable = try SigningTable.parse(contents: "alice@example.com alice detached\n", file: "signing.table")
        config.encryptionTable = try EncryptionTable.parse(contents: table, file: "enc.table")
        let trust = try TrustStore(anchors: [pki + "/root.pem"])
        let encryption = EncryptionSetup(policy: config.encryptionPolicy,
                                         lookup: RecipientCertificateLookup(store: store, check: RecipientCertificateCheck(trust: trust)),
                                         archive: nil, rsaKeyTransport: .pkcs1, harvest: false)
        let identities = IdentityStore.load(directory: pki + "/certs")
        return MessagePolicy(signing: SigningPolicy(configuration: config, identities: identities), verification: nil, encryption: encryption)
    }

    static func message(to rcpt: String) -> MessageContext {
        MessageContext(connection: ConnectionInfo(clientAddress: "192.0.2.7"), envelopeSender: "alice@example.com", recipients: ["<\(rcpt)>"],
                       fields: [HeaderField(name: "From", value: " alice@example.com"), HeaderField(name: "To", value: " \(rcpt)"),
                                HeaderField(name: "Subject", value: " s"), HeaderField(name: "Content-Type", value: " text/plain")],
                       body: Array("Hello.\r\n".utf8))
    }

    static func decrypt(_ outcome: PolicyOutcome, _ message: MessageContext, key: String, scratch: Scratch) throws -> (fields: [HeaderField], entity: String) {
        let result = try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
        let file = try scratch.write("enc.eml", MessageEditor.serialise(fields: result.fields, body: result.body))
        let out = scratch.path + "/plain"
        let decrypted = try Subprocess.run("openssl", ["cms", "-decrypt", "-binary", "-in", file, "-inkey", key, "-out", out])
        #expect(decrypted.status == 0, "\(decrypted.combined)")
        return (result.fields, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    @Test(arguments: ["default", "skip", "opaque"])
    func signedThenEncrypted(sign: String) throws {
        let pki = try FlowPKI.get()
        let scratch = try Scratch()
        let store = MemoryRecipientStore()
        _ = try RecipientCertificateImport.importPEM([UInt8](Data(contentsOf: URL(fileURLWithPath: pki + "/enc/dave.pem"))),
                                                     name: "dave.pem", source: .imported, into: store, at: Date())
        let option = sign == "default" ? "" : " sign=\(sign)"
        let policy = try Self.policy(table: "*@partner.example require\(option)\n", pki: pki, store: store)
        let message = Self.message(to: "dave@partner.example")
        let outcome = policy.evaluate(message, now: Date())
        #expect(outcome.action == .accept, "\(outcome.details)")
        #expect(outcome.details.contains { $0 == ("encrypted", "1") }, "\(outcome.details)")
        let (fields, entity) = try Self.decrypt(outcome, message, key: pki + "/enc/dave.pem", scratch: scratch)
        #expect(fields.filter { $0.name.lowercased() == "content-type" }.count == 1)
        #expect(fields.contains { $0.name == "Subject" } && fields.contains { $0.name == "MIME-Version" })
        switch sign {
        case "skip": #expect(entity == "Content-Type: text/plain\r\n\r\nHello.\r\n")
        case "opaque": #expect(entity.contains("smime-type=signed-data"))
        default: #expect(entity.hasPrefix("Content-Type: multipart/signed"))
        }
    }

    @Test func aCertificateThatExpiredSinceRCPTIsNotUsed() throws {
        let pki = try FlowPKI.get()
        let store = MemoryRecipientStore()
        _ = try RecipientCertificateImport.importPEM([UInt8](Data(contentsOf: URL(fileURLWithPath: pki + "/enc/dave.pem"))),
                                                     name: "dave.pem", source: .imported, into: store, at: Date())
        let message = Self.message(to: "dave@partner.example")
        // Checked at end-of-message: long after its notAfter, dave's certificate no longer counts.
        let later = Date().addingTimeInterval(800 * 86_400)
        let require = try Self.policy(table: "*@partner.example require sign=skip\n", pki: pki, store: store)
        let refused = require.evaluate(message, now: later)
        #expect(refused.action.reply?.code == "450" && refused.edits.isEmpty)
        let encrypt = try Self.policy(table: "*@partner.example encrypt sign=skip\n", pki: pki, store: store)
        let plain = encrypt.evaluate(message, now: later)
        #expect(plain.action == .accept && plain.edits.isEmpty)
        #expect(plain.details.contains { $0 == ("encrypted", "no") })
    }
}
