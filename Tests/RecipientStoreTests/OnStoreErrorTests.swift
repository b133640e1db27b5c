// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Policy
import SMIME
import Testing

/// A store that cannot answer (the shared database down): a `require` recipient is always
/// tempfailed, an `encrypt` recipient as `OnStoreError` says, others are not held up.
@Suite("OnStoreError: the store does not answer")
struct OnStoreErrorTests {
    struct DownStore: RecipientCertificateStore {
        func fail() -> RecipientStoreError { RecipientStoreError(.unavailable, "postgresql://u@db:5432/x: connect: refused") }
        func current(for address: String) throws -> StoredRecipientCertificate? { throw fail() }
        func history(for address: String) throws -> [StoredRecipientCertificate] { throw fail() }
        func upsert(_ certificate: StoredRecipientCertificate) throws -> RecipientCertificateUpsert { throw fail() }
        func remove(address: String) throws -> Int { throw fail() }
        func list() throws -> [StoredRecipientCertificate] { throw fail() }
        func logHarvestDecision(_ entry: HarvestLogEntry) throws { throw fail() }
        func harvestLog(limit: Int) throws -> [HarvestLogEntry] { throw fail() }
    }

    static func policy(onStoreError: StoreErrorAction) throws -> MessagePolicy {
        let pki = try FlowPKI.get()
        var config = Configuration(authservID: "mx.example.com")
        config.internalHosts = try NetworkList.parse(contents: "192.0.2.0/24\n", file: "internal")
        config.signingTable = try SigningTable.parse(contents: "alice@example.com alice detached\n", file: "signing.table")
        config.encryptionTable = try EncryptionTable.parse(
            contents: "dave@partner.example require\nerin@partner.example encrypt\n*@partner.example never\n", file: "enc.table")
        let trust = try TrustStore(anchors: [pki + "/root.pem"])
        let encryption = EncryptionSetup(policy: config.encryptionPolicy,
                                         lookup: RecipientCertificateLookup(store: DownStore(), check: RecipientCertificateCheck(trust: trust)),
                                         archive: nil, rsaKeyTransport: .pkcs1, harvest: false, onStoreError: onStoreError)
        return MessagePolicy(signing: SigningPolicy(configuration: config, identities: IdentityStore.load(directory: pki + "/certs")),
                             verification: nil, encryption: encryption)
    }

    static func envelope() -> MessageContext {
        MessageContext(connection: ConnectionInfo(clientAddress: "192.0.2.7"), envelopeSender: "alice@example.com", recipients: [],
                       fields: [], body: [])
    }

    @Test(arguments: [StoreErrorAction.tempfail, .plaintext])
    func requireIsAlwaysTempfailed(onStoreError: StoreErrorAction) throws {
        let policy = try Self.policy(onStoreError: onStoreError)
        let answer = policy.atRecipient("<dave@partner.example>", envelope: Self.envelope(), transactionClass: nil, now: Date())
        #expect(answer.refusal == "store_error")
        guard case .tempfail = answer.action else {
            Issue.record("expected a tempfail, got \(answer.action)")
            return
        }
        let message = MessagePolicyEncryptionTests.message(to: "dave@partner.example")
        let outcome = policy.evaluate(message, now: Date())
        guard case .tempfail = outcome.action else {
            Issue.record("expected a tempfail at end-of-message, got \(outcome.action)")
            return
        }
        #expect(outcome.edits.isEmpty)
    }

    @Test func encryptFollowsOnStoreError() throws {
        let message = MessagePolicyEncryptionTests.message(to: "erin@partner.example")
        let strict = try Self.policy(onStoreError: .tempfail)
        #expect(strict.atRecipient("<erin@partner.example>", envelope: Self.envelope(), transactionClass: nil, now: Date()).refusal == "store_error")
        guard case .tempfail = strict.evaluate(message, now: Date()).action else {
            Issue.record("OnStoreError tempfail must tempfail")
            return
        }
        let lenient = try Self.policy(onStoreError: .plaintext)
        #expect(lenient.atRecipient("<erin@partner.example>", envelope: Self.envelope(), transactionClass: nil, now: Date()).action == .accept)
        let outcome = lenient.evaluate(message, now: Date())
        #expect(outcome.action == .accept)
        #expect(outcome.details.contains { $0 == ("encrypted", "no") }, "\(outcome.details)")
    }

    @Test func neverRecipientsAreNotHeldUp() throws {
        let policy = try Self.policy(onStoreError: .tempfail)
        #expect(policy.atRecipient("<other@partner.example>", envelope: Self.envelope(), transactionClass: nil, now: Date()).action == .accept)
        #expect(policy.evaluate(MessagePolicyEncryptionTests.message(to: "other@partner.example"), now: Date()).action == .accept)
    }
}
