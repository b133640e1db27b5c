// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import SMIME

/// What the message policy needs to encrypt and to harvest at run time: the table's decisions,
/// the store behind the point-of-use check, the archive certificate. Built at start and at
/// reload by the executable; the policy does the rest.
public struct EncryptionSetup: Sendable {
    /// The table's decisions; nil without an `EncryptionTable` (nothing is encrypted, only
    /// harvested).
    public let policy: EncryptionPolicy?
    /// The store and the check at the point of use.
    public let lookup: RecipientCertificateLookup
    /// `ArchiveCertificate`: one more recipient of every encrypted message.
    public let archive: RecipientCertificate?
    public let rsaKeyTransport: RSAKeyTransport
    /// `HarvestCertificates`.
    public let harvest: Bool
    /// `OnStoreError`: an `encrypt` recipient when the store cannot answer.
    public let onStoreError: StoreErrorAction

    public init(policy: EncryptionPolicy?, lookup: RecipientCertificateLookup, archive: RecipientCertificate?,
                rsaKeyTransport: RSAKeyTransport, harvest: Bool, onStoreError: StoreErrorAction = .tempfail) {
        self.onStoreError = onStoreError
        self.policy = policy
        self.lookup = lookup
        self.archive = archive
        self.rsaKeyTransport = rsaKeyTransport
        self.harvest = harvest
    }
}

/// The answer to one `RCPT TO`, as the policy chose it: the action (accept, or tempfail/reject
/// with its reply) and, when accepted, the recipient's class (the first accepted one is the
/// transaction's; the binding keeps it and hands it back for the next recipient).
public struct RecipientAnswer: Sendable, Equatable {
    public var action: MilterAction
    public var recipientClass: RecipientClass?
    /// Why a recipient was not accepted, as a metrics label: `class_split` or `no_certificate`
    /// (or `store_error`); nil when accepted.
    public var refusal: String?

    public init(action: MilterAction, recipientClass: RecipientClass? = nil, refusal: String? = nil) {
        self.action = action
        self.recipientClass = recipientClass
        self.refusal = refusal
    }

    /// Accept, nothing to remember (no table, inbound mail, or mail that cannot be split).
    public static let accept = RecipientAnswer(action: .accept)
}

extension EncryptionSetup {
    /// The RCPT-time answer for `recipient` of outbound mail: look the certificate up, classify,
    /// and ask `EncryptionPolicy.atRecipient`. Mail submitted locally (`splittable` false) is
    /// never deferred per recipient (Postfix would defer the whole message with 4.3.5): it is
    /// accepted here and decided at end-of-message, which refuses it rather than send plaintext
    /// to a `require` recipient.
    public func atRecipient(_ recipient: String, transactionClass: RecipientClass?, splittable: Bool,
                            now: Date) -> RecipientAnswer {
        guard let policy, splittable else { return .accept }
        let address = EnvelopeAddress.normalise(recipient)
        var hasCertificate = false
        if policy.needsCertificate(address) {
            do {
                if case .success = try lookup.usable(for: recipient, at: now) { hasCertificate = true }
            } catch {
                // A require recipient never gets plaintext; an encrypt one as OnStoreError says.
                guard !mustTempfail(onStoreErrorFor: address, policy: policy) else {
                    return RecipientAnswer(action: .tempfail(FailureRules.notProcessed), refusal: "store_error")
                }
            }
        }
        let recipientClass = policy.classify(address, hasUsableCertificate: hasCertificate)
        switch policy.atRecipient(recipientClass, transactionClass: transactionClass) {
        case .accept(let accepted):
            return RecipientAnswer(action: .accept, recipientClass: accepted)
        case .deferToOwnTransaction(let reply):
            return RecipientAnswer(action: .tempfail(reply), refusal: "class_split")
        case .refuse(let reply):
            let action: MilterAction = reply.code.hasPrefix("5")
                ? .reject(code: reply.code, xcode: reply.xcode, text: reply.text) : .tempfail(reply)
            return RecipientAnswer(action: action, refusal: "no_certificate")
        }
    }

    /// The facts about every recipient now (the point of use: certificates are checked again
    /// at end-of-message, not trusted from RCPT time), with the usable certificates.
    func facts(for recipients: [String], now: Date) throws -> (facts: [RecipientFacts], certificates: [String: RecipientCertificate]) {
        guard let policy else { return ([], [:]) }
        var facts: [RecipientFacts] = []
        var certificates: [String: RecipientCertificate] = [:]
        for recipient in recipients {
            let address = EnvelopeAddress.normalise(recipient).lowercased()
            guard policy.needsCertificate(address) else {
                facts.append(RecipientFacts(address: address, recipientClass: policy.classify(address, hasUsableCertificate: false)))
                continue
            }
            let found: Result<UsableRecipientCertificate, RecipientCertificateLookup.LookupProblem>
            do {
                found = try lookup.usable(for: address, at: now)
            } catch {
                if mustTempfail(onStoreErrorFor: address, policy: policy) { throw error }
                found = .failure(RecipientCertificateLookup.LookupProblem(reason: "store error: \(error)"))
            }
            switch found {
            case .success(let usable):
                certificates[address] = usable.certificate
                facts.append(RecipientFacts(address: address, recipientClass: policy.classify(address, hasUsableCertificate: true),
                                            capabilities: usable.capabilities))
            case .failure:
                facts.append(RecipientFacts(address: address, recipientClass: policy.classify(address, hasUsableCertificate: false)))
            }
        }
        return (facts, certificates)
    }

    /// Whether a store error for this recipient tempfails the mail: always for `require`
    /// (plaintext is never allowed), for `encrypt` unless `OnStoreError plaintext`.
    func mustTempfail(onStoreErrorFor address: String, policy: EncryptionPolicy) -> Bool {
        policy.table.match(address)?.encryption == .require || onStoreError == .tempfail
    }
}

extension MessagePolicy {
    /// The RCPT-time entry point: what the binding answers for `recipient` of the transaction
    /// `envelope` (connection, SASL login, sender; no header or body yet). Inbound mail and a
    /// setup without an `EncryptionTable` accept every recipient.
    public func atRecipient(_ recipient: String, envelope: MessageContext, transactionClass: RecipientClass?,
                            now: Date) -> RecipientAnswer {
        let outbound = MessageOrigin.of(envelope, internalHosts: configuration.internalHosts) != nil
        if !outbound, let decryption {
            return decryption.atRecipient(recipient, transactionClass: transactionClass, splittable: !envelope.connection.isNonSMTP)
        }
        guard let encryption, encryption.policy != nil, configuration.mode.contains(.sign), outbound else { return .accept }
        return encryption.atRecipient(recipient, transactionClass: transactionClass,
                                      splittable: !envelope.connection.isNonSMTP, now: now)
    }

    /// Outbound with an `EncryptionTable`: decide for the whole message, sign (with the
    /// recipients' `sign=` choice), then encrypt the signed entity when the decision says so.
    func signAndEncrypt(_ message: MessageContext, origin: MessageOrigin, encryption: EncryptionSetup,
                        policy: EncryptionPolicy, now: Date) -> PolicyOutcome {
        let facts: [RecipientFacts]
        let certificates: [String: RecipientCertificate]
        do {
            (facts, certificates) = try encryption.facts(for: message.recipients, now: now)
        } catch {
            return configuration.failureRules.error("recipient certificate store: \(error)",
                                                    outcome: PolicyOutcome(decision: .error(reason: "")))
        }
        let decision = policy.atEndOfMessage(facts)
        if case let .refuse(reply, reason) = decision {
            let action: MilterAction = reply.code.hasPrefix("5")
                ? .reject(code: reply.code, xcode: reply.xcode, text: reply.text) : .tempfail(reply)
            return PolicyOutcome(decision: .skipped(reason: reason), action: action,
                                 fromAddress: FromField.of(message.fields).single,
                                 details: [("origin", origin.rawValue), ("encrypted", "no"), ("why", reason)])
        }
        var outcome = signing.evaluate(message, origin: origin, now: now, recipientSigning: EncryptionPolicy.signing(for: facts))
        switch decision {
        case .refuse:
            return outcome
        case .plaintext(let reason):
            outcome.details.append(("encrypted", "no"))
            outcome.details.append(("why", reason))
            return outcome
        case let .encrypt(recipients, cipher, archive):
            // A refused or failed signing is not turned into an encrypted plaintext; a message
            // that must be encrypted is never passed on unencrypted either.
            switch outcome.action {
            case .tempfail, .reject: return outcome
            case .accept, .quarantine: break
            }
            if case .error = outcome.decision {
                return Self.encryptionFailed("signing failed", outcome: outcome)
            }
            do {
                let edits = try Self.encryptionEdits(message, signingEdits: outcome.edits,
                                                     recipients: recipients.compactMap { certificates[$0] },
                                                     archive: archive ? encryption.archive : nil, cipher: cipher,
                                                     rsaKeyTransport: encryption.rsaKeyTransport)
                outcome.edits = edits
                outcome.details.append(("encrypted", "\(recipients.count)"))
                outcome.details.append(("cipher", cipher.rawValue))
                if archive && encryption.archive != nil { outcome.details.append(("archive", "yes")) }
            } catch {
                return Self.encryptionFailed("encryption failed: \(error)", outcome: outcome)
            }
            return outcome
        }
    }

    /// Encryption that was decided but could not be done: tempfail whatever `OnError` says (the
    /// recipients must not get plaintext, and the client can retry).
    static func encryptionFailed(_ reason: String, outcome: PolicyOutcome) -> PolicyOutcome {
        var failed = outcome
        failed.decision = .error(reason: reason)
        failed.edits = []
        failed.action = .tempfail(FailureRules.notProcessed)
        failed.details.append(("encrypted", "no"))
        return failed
    }

    /// The edits that turn the message as received into the encrypted one: the signing edits
    /// that touch neither Content-* fields nor the body, every Content-* field as received
    /// deleted, MIME-Version added when missing, the enveloped entity's Content-* fields and body.
    static func encryptionEdits(_ message: MessageContext, signingEdits: [MessageEdit], recipients: [RecipientCertificate],
                                archive: RecipientCertificate?, cipher: ContentCipher,
                                rsaKeyTransport: RSAKeyTransport) throws -> [MessageEdit] {
        let signed = try MessageEditor.apply(signingEdits, fields: message.fields, body: message.body)
        let contentFields = signed.fields.filter { SignatureLayer.isContentField($0.name) }
        let encrypted = try MessageEncryption.encrypt(contentFields: contentFields, body: signed.body, recipients: recipients,
                                                      archive: archive, cipher: cipher, rsaKeyTransport: rsaKeyTransport)
        var edits = signingEdits.filter { edit in
            switch edit {
            case .replaceBody: return false
            case let .deleteField(name, _), let .addField(name, _), let .insertField(_, name, _), let .changeField(name, _, _):
                return !SignatureLayer.isContentField(name)
            }
        }
        edits += SignatureLayer.contentFieldOccurrences(message.fields).reversed().map {
            .deleteField(name: $0.name, occurrence: $0.occurrence)
        }
        if !signed.fields.contains(where: { $0.name.caseInsensitiveCompare("MIME-Version") == .orderedSame }) {
            edits.append(.addField(name: "MIME-Version", value: " 1.0"))
        }
        edits.append(.addField(name: "Content-Type", value: " " + encrypted.contentType))
        edits.append(.addField(name: "Content-Transfer-Encoding", value: " " + encrypted.contentTransferEncoding))
        edits.append(.addField(name: "Content-Disposition", value: " " + encrypted.contentDisposition))
        edits.append(.replaceBody(encrypted.body))
        return edits
    }

    /// After an inbound message's verdict: harvest the signer's certificate when the message
    /// passed (`HarvestRules` decide; every decision goes to the harvest log). A store error is
    /// noted in the log line and changes nothing else.
    func harvest(_ message: MessageContext, report: VerificationReport?, body: [UInt8]?, outcome: PolicyOutcome,
                 now: Date) -> PolicyOutcome {
        guard let encryption, encryption.harvest, let report, let body, report.result != .none else { return outcome }
        var outcome = outcome
        do {
            let entry = try RecipientCertificateHarvester(store: encryption.lookup.store).harvest(
                fields: message.fields, body: body, report: report, fromAddress: outcome.fromAddress,
                queueID: message.queueID, at: now)
            if let entry { outcome.details.append(("harvest", entry.kept ? "kept" : "refused")) }
            if let entry, !entry.kept, report.result == .pass { outcome.details.append(("harvest_reason", entry.reason)) }
        } catch {
            outcome.details.append(("harvest", "store error: \(error)"))
        }
        return outcome
    }
}
