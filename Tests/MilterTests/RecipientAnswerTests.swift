// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
@testable import Milter
import Policy
import SMIME
import Testing

/// The RCPT replies: the session returns what the policy chose for each recipient and sets its
/// reply; a refused recipient is not collected.
@Suite("RCPT answers from the encryption policy")
struct RecipientAnswerTests {
    static func policy(_ table: String, onMissing: MissingRecipientCertificateAction = .tempfail,
                       store: any RecipientCertificateStore = MemoryRecipientStore()) throws -> MessagePolicy {
        var config = Configuration(authservID: "mx.example.net")
        config.internalHosts = try NetworkList.parse(contents: "192.0.2.0/24\n", file: "internal")
        config.encryptionTable = try EncryptionTable.parse(contents: table, file: "enc.table")
        config.onMissingRecipientCertificate = onMissing
        let encryption = EncryptionSetup(
            policy: config.encryptionPolicy,
            lookup: RecipientCertificateLookup(store: store, check: RecipientCertificateCheck(trust: try TrustStore.empty())),
            archive: nil, rsaKeyTransport: .pkcs1, harvest: false)
        return MessagePolicy(signing: SigningPolicy(configuration: config, identities: IdentityStore(identities: [])),
                             verification: nil, encryption: encryption)
    }

    static let table = """
        *@partner.example   require
        *@plain.example     never
        *@webmail.example   never  sign=skip
        """

    /// An outbound session (an internal host) after MAIL FROM.
    static func session(_ policy: MessagePolicy, address: String = "192.0.2.7", port: Int = 4711) -> MilterSession {
        let session = MilterSession(delegate: RecordingDelegate(policy))
        session.connect(hostname: "client.example", address: address, port: port, hasAddress: true)
        session.envelopeFrom(sender: "<alice@example.com>", saslLogin: nil)
        return session
    }

    @Test func aRecipientOfAnotherClassIsDeferredWith452_4_5_3() throws {
        let session = Self.session(try Self.policy(Self.table))
        let sink = RecordingSink()
        #expect(session.envelopeRecipient("<bob@plain.example>", sink: sink) == .accept)
        #expect(session.envelopeRecipient("<carol@plain.example>", sink: sink) == .accept)
        let action = session.envelopeRecipient("<dan@webmail.example>", sink: sink)
        guard case let .tempfail(code, xcode, text) = action else {
            Issue.record("expected tempfail, got \(action)")
            return
        }
        #expect((code, xcode) == ("452", "4.5.3"))
        #expect(text.contains("transaction of its own"))
        #expect(sink.replies == [SMTPReply(code: code, xcode: xcode, text: text)])
        // An unlisted recipient is of yet another class.
        #expect(session.envelopeRecipient("<erin@elsewhere.example>", sink: sink).reply?.code == "452")
        #expect(session.recipients == ["<bob@plain.example>", "<carol@plain.example>"])
    }

    @Test(arguments: [(MissingRecipientCertificateAction.tempfail, "450", "4.7.0"), (.reject, "550", "5.7.1")])
    func aRequireRecipientWithoutCertificateIsRefusedAsConfigured(onMissing: MissingRecipientCertificateAction,
                                                                  code: String, xcode: String) throws {
        let session = Self.session(try Self.policy(Self.table, onMissing: onMissing))
        let sink = RecordingSink()
        let action = session.envelopeRecipient("<dave@partner.example>", sink: sink)
        #expect(action.reply?.code == code && action.reply?.xcode == xcode)
        if onMissing == .reject {
            guard case .reject = action else { Issue.record("expected reject, got \(action)"); return }
        } else {
            guard case .tempfail = action else { Issue.record("expected tempfail, got \(action)"); return }
        }
        #expect(sink.replies.count == 1)
        #expect(session.recipients.isEmpty)
        // Refused, it fixes no class: the next recipient is the first.
        #expect(session.envelopeRecipient("<bob@plain.example>", sink: sink) == .accept)
    }

    @Test func inboundMailAcceptsEveryRecipient() throws {
        let session = Self.session(try Self.policy(Self.table), address: "198.51.100.1", port: 25)
        let sink = RecordingSink()
        for r in ["<dave@partner.example>", "<bob@plain.example>", "<dan@webmail.example>"] {
            #expect(session.envelopeRecipient(r, sink: sink) == .accept)
        }
        #expect(sink.replies.isEmpty && session.recipients.count == 3)
    }

    /// Mail from the sendmail command cannot be split per recipient: every recipient is
    /// accepted, and at end-of-message the whole message is refused rather than give a
    /// `require` recipient plaintext.
    @Test func nonSMTPMailIsAcceptedAtRCPTAndRefusedWholeAtEndOfMessage() throws {
        let session = Self.session(try Self.policy(Self.table), address: "127.0.0.1", port: 0)
        let sink = RecordingSink()
        #expect(session.envelopeRecipient("<bob@plain.example>", sink: sink) == .accept)
        #expect(session.envelopeRecipient("<dave@partner.example>", sink: sink) == .accept)
        for (name, value) in sampleFields { session.header(name: Array(name.utf8), value: Array(value.utf8)) }
        Array(sampleBody.utf8).withUnsafeBufferPointer { session.appendBody($0) }
        let action = session.endOfMessage(queueID: "Q1", sink: sink)
        #expect(action.reply?.code == "450" && action.reply?.xcode == "4.7.0")
        guard case .tempfail = action else { Issue.record("expected tempfail, got \(action)"); return }
        #expect(sink.edits.isEmpty)
    }

    @Test func withoutAnEncryptionTableNothingChanges() throws {
        let config = Configuration(authservID: "mx.example.net")
        let policy = MessagePolicy(signing: SigningPolicy(configuration: config, identities: IdentityStore(identities: [])),
                                   verification: nil)
        let session = MilterSession(delegate: RecordingDelegate(policy))
        session.connect(hostname: nil, address: "127.0.0.1", port: 0, hasAddress: true)
        session.envelopeFrom(sender: "<alice@example.com>", saslLogin: nil)
        #expect(session.envelopeRecipient("<dave@partner.example>", sink: RecordingSink()) == .accept)
    }

    /// A store that cannot answer: only recipients whose class depends on a certificate are
    /// held up by it (tempfail, never plaintext); `never` and unlisted ones are not asked.
    @Test func aStoreErrorHoldsUpOnlyRecipientsThatNeedACertificate() throws {
        let policy = try Self.policy(Self.table, store: UnansweringRecipientStore())
        let sink = RecordingSink()
        let first = Self.session(policy)
        #expect(first.envelopeRecipient("<bob@plain.example>", sink: sink) == .accept)
        let second = Self.session(policy)
        let action = second.envelopeRecipient("<dave@partner.example>", sink: sink)
        guard case .tempfail = action else { Issue.record("expected tempfail, got \(action)"); return }
        #expect(second.recipients.isEmpty)
    }
}

/// Every read fails, as a database that is down would.
private struct UnansweringRecipientStore: RecipientCertificateStore {
    struct Down: Error {}
    func current(for address: String) throws -> StoredRecipientCertificate? { throw Down() }
    func history(for address: String) throws -> [StoredRecipientCertificate] { throw Down() }
    func upsert(_ certificate: StoredRecipientCertificate) throws -> RecipientCertificateUpsert { throw Down() }
    func remove(address: String) throws -> Int { throw Down() }
    func list() throws -> [StoredRecipientCertificate] { throw Down() }
    func logHarvestDecision(_ entry: HarvestLogEntry) throws { throw Down() }
    func harvestLog(limit: Int) throws -> [HarvestLogEntry] { throw Down() }
}
