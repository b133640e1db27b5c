// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import SMIME

/// What the message policy needs to decrypt inbound mail: the table and settings, and the keys
/// (every identity of CertificateDir: current, expired, revoked, and the superseded ones kept in
/// `archive/`, since old mail must stay readable). Built at start and at reload.
public struct DecryptionSetup: Sendable {
    public let settings: DecryptionSettings
    public let table: DecryptionTable
    /// The identities whose keys may open envelopes.
    public let keys: [SigningIdentity]

    public init(table: DecryptionTable, settings: DecryptionSettings, keys: [SigningIdentity]) {
        self.table = table
        self.settings = settings
        self.keys = keys
    }

    /// The header field that says what the gateway did with an encrypted message.
    public static let fieldName = "X-SMIME-Decrypted"

    /// The class of one recipient: decrypt, or nil (keep and unlisted both leave the message
    /// encrypted, so they can share a transaction).
    public func recipientClass(_ recipient: String) -> RecipientClass {
        let decrypts = table.match(EnvelopeAddress.normalise(recipient))?.decryption == .decrypt
        return RecipientClass(encryption: nil, signing: .asConfigured, hasUsableCertificate: false,
                              decryption: decrypts ? .decrypt : nil)
    }

    /// The RCPT-time answer for inbound mail: a recipient whose class differs from the
    /// transaction's is deferred with 452 4.5.3, so that no recipient receives a body decrypted
    /// for another (the encryption issue's mechanism). Mail submitted locally is never split
    /// per recipient (Postfix would defer it whole); its end-of-message decision leaves a mixed
    /// message encrypted.
    public func atRecipient(_ recipient: String, transactionClass: RecipientClass?, splittable: Bool) -> RecipientAnswer {
        guard splittable else { return .accept }
        let recipientClass = recipientClass(recipient)
        guard let transactionClass else { return RecipientAnswer(action: .accept, recipientClass: recipientClass) }
        guard transactionClass == recipientClass else {
            return RecipientAnswer(action: .tempfail(SMTPReply(code: "452", xcode: "4.5.3",
                text: "Recipient needs a transaction of its own (decryption class \(recipientClass), not \(transactionClass)); try again")),
                refusal: "class_split")
        }
        return RecipientAnswer(action: .accept, recipientClass: recipientClass)
    }

    /// What to do for a whole message's recipients.
    public enum Choice: Sendable, Equatable {
        /// Every recipient is `decrypt`.
        case decrypt
        /// At least one is `keep`, none `decrypt`.
        case keep
        /// Some are `decrypt` and some not (only mail that could not be split): left encrypted.
        case mixed
        /// No recipient is listed.
        case unlisted
    }

    public func choice(for recipients: [String]) -> Choice {
        let classes = recipients.map { table.match(EnvelopeAddress.normalise($0))?.decryption }
        if !classes.isEmpty, classes.allSatisfy({ $0 == .decrypt }) { return .decrypt }
        if classes.contains(.decrypt) { return .mixed }
        return classes.contains(.keep) ? .keep : .unlisted
    }

    /// The keys that may open mail for `recipients`: identities whose certificate holds a
    /// recipient's address. A key of one user never opens mail sent to another.
    func candidates(for recipients: [String]) -> [SigningIdentity] {
        let addresses = Set(recipients.map { EnvelopeAddress.normalise($0).lowercased() })
        return keys.filter { identity in identity.addresses.contains { addresses.contains($0) } }
    }
}

extension MessagePolicy {
    /// Inbound mail with a `DecryptionTable`: forged `X-SMIME-Decrypted` fields removed; an
    /// encrypted root decrypted for `decrypt` recipients (the body replaced by the decrypted
    /// entity), then verified as any inbound message; failures per `OnDecryptionError`.
    func decryptAndVerify(_ message: MessageContext, decryption: DecryptionSetup, now: Date) -> PolicyOutcome {
        let body: [UInt8]
        do {
            body = try message.body.bytes()
        } catch {
            return configuration.failureRules.error("\(error)", outcome: PolicyOutcome(decision: .error(reason: "")))
        }
        let forged = forgedDecryptionFields(message.fields)
        // The envelope: the root, or the content of a signed root (encrypt-then-sign, and the
        // outer layer of a triple wrap). Never an encrypted part among others (EFAIL).
        let envelope: (fields: [HeaderField], body: [UInt8])
        let underSignature: Bool
        if MessageDecryptor.envelope(fields: message.fields, body: body) != nil {
            envelope = (message.fields, body)
            underSignature = false
        } else if let signed = MessageDecryptor.signedEnvelope(fields: message.fields, body: body) {
            envelope = signed
            underSignature = true
        } else {
            return verifyWithout(message, extraEdits: forged, now: now, details: forged.isEmpty ? [] : [("removed", "\(forged.count) forged \(DecryptionSetup.fieldName)")])
        }
        switch decryption.choice(for: message.recipients) {
        case .unlisted:
            return verifyWithout(message, extraEdits: forged, now: now, details: [])
        case .keep, .mixed:
            let why = decryption.choice(for: message.recipients) == .keep ? "keep" : "mixed recipients"
            return verifyWithout(message, extraEdits: forged + [.addField(name: DecryptionSetup.fieldName, value: " no (kept: \(why))")],
                                 now: now, details: [("decryption", "kept"), ("decrypt_why", why)])
        case .decrypt:
            break
        }
        let decrypted: DecryptedMessage
        do {
            decrypted = try open(message, envelope: envelope, decryption: decryption)
        } catch {
            return decryptionFailed(message, failure: error, forged: forged, decryption: decryption, now: now)
        }
        // The outer signature goes with the layer it signed, so it is verified on the message as
        // it came and reported beside the result of what is delivered (it is not a signature on
        // the plaintext: anyone can sign someone else's ciphertext, RFC 2634 §1.1).
        var outerSignature: VerificationReport?
        if underSignature, let verification, configuration.mode.contains(.verify) {
            outerSignature = verification.evaluateReporting(message, now: now).report
        }
        var edits = forged
        edits += SignatureLayer.contentFieldOccurrences(message.fields).reversed().map {
            MessageEdit.deleteField(name: $0.name, occurrence: $0.occurrence)
        }
        let innerContent = decrypted.fields.filter { SignatureLayer.isContentField($0.name) }
        for field in innerContent {
            edits.append(.addField(name: field.name, value: field.value.replacingOccurrences(of: "\r\n", with: "\n")))
        }
        if innerContent.isEmpty { edits.append(.addField(name: "Content-Type", value: " text/plain; charset=us-ascii")) }
        let layer = decrypted.layers[decrypted.layers.count - 1]
        edits.append(.addField(name: DecryptionSetup.fieldName, value: Self.decryptedValue(decrypted, authservID: configuration.authservID)))
        edits.append(.replaceBody(decrypted.body))
        var details: [(String, String)] = [("decryption", "decrypted"), ("decrypt_identity", layer.identityName),
                                           ("decrypt_cipher", decrypted.layers.map(\.cipher).joined(separator: ",")),
                                           ("decrypt_key", layer.keyAlgorithm)]
        if decrypted.layers.count > 1 { details.append(("decrypt_layers", "\(decrypted.layers.count)")) }
        if underSignature { details.append(("outer_signature", outerSignature?.result.rawValue ?? "not verified")) }
        if !forged.isEmpty { details.append(("removed", "\(forged.count) forged \(DecryptionSetup.fieldName)")) }

        // The inner message as the recipient will see it, verified as any inbound message.
        let innerFields: [HeaderField]
        do {
            innerFields = try MessageEditor.apply(edits.filter { if case .replaceBody = $0 { return false } else { return true } },
                                                  fields: message.fields, body: []).fields
        } catch {
            return configuration.failureRules.error("\(error)", outcome: PolicyOutcome(decision: .error(reason: "")))
        }
        var inner = message
        inner.fields = innerFields
        inner.body = .memory(decrypted.body)
        var outcome: PolicyOutcome
        var report: VerificationReport?
        if let verification, configuration.mode.contains(.verify) {
            let verified = verification.evaluateReporting(inner, now: now)
            outcome = verified.outcome
            report = verified.report
            // Verification's edits name occurrences in `inner`; forged-header deletions and the
            // Content-* changes above leave Authentication-Results and Subject occurrences as received.
            outcome.edits = rebase(outcome.edits, inner: innerFields, outer: message.fields) + edits
            if let outerSignature, let report {
                outcome.edits = outcome.edits.map { edit in
                    guard case .insertField(let index, let name, _) = edit, name == AuthenticationResults.fieldName else { return edit }
                    return .insertField(index: index, name: name, value: AuthenticationResults.value(
                        authservID: configuration.authservID, report: report, outerSignature: outerSignature))
                }
            }
        } else {
            outcome = PolicyOutcome(decision: .skipped(reason: "inbound, decrypted, not verified"), edits: edits,
                                    fromAddress: FromField.of(message.fields).single)
        }
        if outcome.action.reply != nil { outcome.edits = [] }
        outcome.details = details + outcome.details
        if let encryption, encryption.harvest {
            outcome = harvest(inner, report: report, body: decrypted.body, outcome: outcome, now: now)
        }
        return outcome
    }

    /// The verification edits apply to the inner header; occurrences of Authentication-Results
    /// and Subject are the same as in the outer one (only Content-* and X-SMIME-Decrypted
    /// differ), and an insertion index counts fields from the top, where nothing moved either.
    private func rebase(_ edits: [MessageEdit], inner: [HeaderField], outer: [HeaderField]) -> [MessageEdit] {
        edits.filter { edit in
            switch edit {
            case let .deleteField(name, _), let .changeField(name, _, _):
                return !SignatureLayer.isContentField(name) && !name.caseInsensitiveCompare(DecryptionSetup.fieldName).isEqual
            default: return true
            }
        }
    }

    /// Opens the envelope (the entity `envelope` names: the root's or the signed layer's fields
    /// and body) with the recipients' keys, once every recipient's certificate is named in it
    /// (else one recipient could read what was encrypted for another only).
    private func open(_ message: MessageContext, envelope: (fields: [HeaderField], body: [UInt8]),
                      decryption: DecryptionSetup) throws(DecryptionFailure) -> DecryptedMessage {
        let candidates = decryption.candidates(for: message.recipients)
        if let der = MessageDecryptor.envelope(fields: envelope.fields, body: envelope.body) {
            let named = CMSDecryptor.namedIdentities(der, candidates: candidates)
            for recipient in message.recipients {
                let address = EnvelopeAddress.normalise(recipient).lowercased()
                if !named.contains(where: { $0.addresses.contains(address) }) {
                    throw DecryptionFailure(.noKey, "the envelope names no certificate of \(address) held here")
                }
            }
        }
        guard let decrypted = try MessageDecryptor.decrypt(
            fields: envelope.fields, body: envelope.body, candidates: candidates,
            allowWeakCiphers: decryption.settings.allowWeakCiphers, maximumSize: decryption.settings.maximumSize)
        else { throw DecryptionFailure(.corrupt, "the message is not encrypted") }
        return decrypted
    }

    private func decryptionFailed(_ message: MessageContext, failure: DecryptionFailure, forged: [MessageEdit],
                                  decryption: DecryptionSetup, now: Date) -> PolicyOutcome {
        let details: [(String, String)] = [("decryption", "failed"), ("decrypt_cause", failure.cause.rawValue),
                                           ("decrypt_reason", failure.reason)]
        switch decryption.settings.onError {
        case .accept:
            let value = " failed (cause=\(failure.cause.rawValue); " + PrintableASCII.cleaned(String(failure.reason.prefix(300))) + ")"
            return verifyWithout(message, extraEdits: forged + [.addField(name: DecryptionSetup.fieldName, value: value)],
                                 now: now, details: details)
        case .tempfail:
            return PolicyOutcome(decision: .error(reason: "decryption failed: \(failure)"),
                                 action: FailureRules.decryptionFailed(failure.cause.rawValue, permanent: false),
                                 fromAddress: FromField.of(message.fields).single, details: details)
        case .reject:
            return PolicyOutcome(decision: .error(reason: "decryption failed: \(failure)"),
                                 action: FailureRules.decryptionFailed(failure.cause.rawValue, permanent: true),
                                 fromAddress: FromField.of(message.fields).single, details: details)
        }
    }

    /// The message as it came, verified as today (or left alone without a verifier), plus `extraEdits`.
    private func verifyWithout(_ message: MessageContext, extraEdits: [MessageEdit], now: Date,
                               details: [(String, String)]) -> PolicyOutcome {
        var outcome: PolicyOutcome
        if let verification, configuration.mode.contains(.verify) {
            if let encryption, encryption.harvest {
                let (verified, report, body) = verification.evaluateReporting(message, now: now)
                outcome = harvest(message, report: report, body: body, outcome: verified, now: now)
            } else {
                outcome = verification.evaluate(message, now: now)
            }
        } else {
            outcome = PolicyOutcome(decision: .skipped(reason: "inbound, not verified"), fromAddress: FromField.of(message.fields).single)
        }
        if outcome.action.reply == nil { outcome.edits += extraEdits }
        outcome.details = details + outcome.details
        return outcome
    }

    /// Deletions of every X-SMIME-Decrypted field as received, last first: only the gateway writes it.
    private func forgedDecryptionFields(_ fields: [HeaderField]) -> [MessageEdit] {
        let count = fields.filter { $0.hasName(DecryptionSetup.fieldName) }.count
        return (0..<count).reversed().map { .deleteField(name: DecryptionSetup.fieldName, occurrence: $0 + 1) }
    }

    /// " yes (by mx.example.org; identity alice@example.com; certificate 1A2B from CN=...; cipher AES-256-CBC; key rsaEncryption)".
    static func decryptedValue(_ decrypted: DecryptedMessage, authservID: String) -> String {
        let layer = decrypted.layers[decrypted.layers.count - 1]
        var parts = ["by \(authservID)", "identity \(layer.identityName)",
                     "certificate \(layer.certificateSerialHex) from \(layer.certificateIssuer)",
                     "cipher \(decrypted.layers.map(\.cipher).joined(separator: ","))", "key \(layer.keyAlgorithm)"]
        if decrypted.layers.count > 1 { parts.append("layers \(decrypted.layers.count)") }
        return " yes (" + PrintableASCII.cleaned(parts.joined(separator: "; ")) + ")"
    }
}

extension FailureRules {
    /// `OnDecryptionError tempfail` (451 4.7.5) or `reject` (550 5.7.5): RFC 3463's
    /// "cryptographic failure"; the cause word is the one in the log line.
    public static func decryptionFailed(_ cause: String, permanent: Bool) -> MilterAction {
        let text = "smime-milter: the encrypted message cannot be decrypted here (\(cause))"
        return permanent ? .reject(code: "550", xcode: "5.7.5", text: text)
            : .tempfail(code: "451", xcode: "4.7.5", text: text + ", try again later")
    }
}

private extension ComparisonResult {
    var isEqual: Bool { self == .orderedSame }
}
