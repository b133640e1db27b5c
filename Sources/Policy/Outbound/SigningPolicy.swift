// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import SMIME

/// The decision for one outbound message: does it originate here, who is it from, may the
/// submitter use that address, which identity signs it, and the edits that sign it.
///
/// The milter binding and the offline `sign` command both call `evaluate`; neither has signing
/// logic of its own. Value type, immutable: a reload builds a new one.
public struct SigningPolicy: Sendable {
    public let configuration: Configuration
    public let identities: IdentityStore
    /// Checks whether a client's signature on outbound mail is still intact (only `integrity`
    /// and the reason of its report are used; trust in the signer does not matter). Nil: mail
    /// that is already signed is left alone unchecked.
    public let integrityVerifier: (any SignatureVerifier)?

    public init(configuration: Configuration, identities: IdentityStore, integrityVerifier: (any SignatureVerifier)? = nil) {
        self.configuration = configuration
        self.identities = identities
        self.integrityVerifier = integrityVerifier
    }

    /// Decides about `message` and returns the edits that carry the decision out (the offline
    /// `sign` command; the milter goes through `MessagePolicy`, which knows the origin already).
    public func evaluate(_ message: MessageContext, now: Date) -> PolicyOutcome {
        guard configuration.mode.contains(.sign) else { return Self.signingOff }
        guard let origin = MessageOrigin.of(message, internalHosts: configuration.internalHosts) else {
            return PolicyOutcome(decision: .skipped(reason: "not originating here"))
        }
        return evaluate(message, origin: origin, now: now)
    }

    /// The outcome when `Mode` has no s.
    static let signingOff = PolicyOutcome(decision: .skipped(reason: "signing is off (Mode)"))

    /// Decides about `message`, which originates here for the reason `origin`. `recipientSigning`
    /// is the EncryptionTable's `sign=` choice for the message's recipients (skip, or the form).
    public func evaluate(_ message: MessageContext, origin: MessageOrigin, now: Date,
                         recipientSigning: RecipientSigning = .asConfigured) -> PolicyOutcome {
        guard configuration.mode.contains(.sign) else { return Self.signingOff }
        let fromAddress: String
        switch singleFrom(message.fields) {
        case let .failure(reason):
            return PolicyOutcome(decision: .skipped(reason: reason.description), details: [("origin", origin.rawValue)])
        case let .success(address):
            fromAddress = address
        }
        let outcome = PolicyOutcome(decision: .skipped(reason: ""), fromAddress: fromAddress, details: [("origin", origin.rawValue)])
        if SignableEntity.isAlreadySigned(fields: message.fields) {
            // Checking the client's signature needs the body in memory.
            let body: [UInt8]
            do {
                body = try message.body.bytes()
            } catch {
                return configuration.failureRules.error("\(error)", outcome: outcome)
            }
            return alreadySigned(message, body: body, fromAddress: fromAddress, outcome: outcome, now: now)
        }
        if recipientSigning == .skip {
            var skipped = outcome
            skipped.decision = .skipped(reason: "not signed for these recipients (EncryptionTable sign=skip)")
            return skipped
        }
        return sign(message, fromAddress: fromAddress, outcome: outcome, now: now, recipientSigning: recipientSigning)
    }

    /// Steps 5 to 8: authorisation, identity, validity, signing. With `layer`, the message is
    /// signed as it is once that broken signature layer is removed (`OnBrokenSignature resign`).
    func sign(_ message: MessageContext, fromAddress: String, outcome: PolicyOutcome, now: Date,
              replacing layer: SignatureLayer? = nil, recipientSigning: RecipientSigning = .asConfigured) -> PolicyOutcome {
        var outcome = outcome
        if let refusal = authorisationProblem(message, fromAddress: fromAddress) {
            outcome.decision = .unauthorised(reason: refusal)
            return outcome
        }
        let choice: (identity: SigningIdentity, form: SignatureForm)
        switch chooseIdentity(for: fromAddress) {
        case let .failure(reason):
            outcome.decision = .skipped(reason: reason.description)
            if let expired = expiredIdentity(for: fromAddress) {
                return expiredCertificate(expired, outcome: outcome)
            }
            if configuration.onMissingIdentity == .tempfail, shouldHaveIdentity(fromAddress) {
                outcome.action = FailureRules.missingIdentity
            }
            return outcome
        case let .success(found):
            switch recipientSigning {
            case .detached: choice = (found.identity, .detached)
            case .opaque: choice = (found.identity, .opaque)
            case .asConfigured, .skip: choice = found
            }
        }
        outcome.details.append(("identity", choice.identity.name))
        if now > choice.identity.notAfter {
            return expiredCertificate(choice.identity, outcome: outcome)
        }
        if now < choice.identity.notBefore {
            outcome.decision = .skipped(reason: "certificate of identity \(choice.identity.name) is not valid yet")
            return outcome
        }
        if !choice.identity.addresses.contains(fromAddress) {
            outcome.details.append(("warning", "certificate does not name the From address"))
        }
        do {
            let edits = try signingEdits(message, identity: choice.identity, form: choice.form, replacing: layer)
            outcome.decision = .signed(identity: choice.identity.name, form: choice.form)
            outcome.edits = edits
            outcome.details.append(("form", choice.form.rawValue))
            outcome.details.append(("digest", configuration.digest.rawValue))
        } catch {
            return configuration.failureRules.error("\(error)", outcome: outcome)
        }
        return outcome
    }

    /// Whether `fromAddress` is meant to sign (`OnMissingIdentity`): always without a
    /// SigningTable, only when its line names an identity with one.
    func shouldHaveIdentity(_ fromAddress: String) -> Bool {
        guard let table = configuration.signingTable else { return true }
        if case .sign? = table.lookup(fromAddress) { return true }
        return false
    }

    /// The expired identity that would have signed for `fromAddress`, if any.
    func expiredIdentity(for fromAddress: String) -> SigningIdentity? {
        guard let table = configuration.signingTable else { return identities.expiredIdentity(forAddress: fromAddress) }
        if case let .sign(name, _)? = table.lookup(fromAddress) { return identities.expiredIdentity(named: name) }
        return nil
    }

    /// `OnExpiredCertificate`: never sign with an expired certificate; go out unsigned (logged)
    /// or make the MTA keep the mail until a new certificate is installed.
    func expiredCertificate(_ identity: SigningIdentity, outcome: PolicyOutcome) -> PolicyOutcome {
        var outcome = outcome
        let when = ISO8601DateFormatter().string(from: identity.notAfter)
        outcome.decision = .skipped(reason: "certificate of identity \(identity.name) expired on \(when)")
        if configuration.onExpiredCertificate == .tempfail {
            outcome.action = FailureRules.expiredCertificate
        }
        return outcome
    }

    /// The one From address, or why there is none to sign for.
    func singleFrom(_ fields: [HeaderField]) -> Result<String, Reason> {
        let froms = fields.all(named: "From")
        guard froms.count == 1, let from = froms.first else {
            return .failure(Reason(froms.isEmpty ? "no From header field" : "\(froms.count) From header fields"))
        }
        guard let mailboxes = try? AddressList.mailboxes(in: from.value), !mailboxes.isEmpty else {
            return .failure(Reason("From header field cannot be parsed"))
        }
        guard mailboxes.count == 1, let only = mailboxes.first else {
            return .failure(Reason("From header field has \(mailboxes.count) addresses"))
        }
        return .success(only.normalisedAddress)
    }

    /// Nil when the submitter may use `fromAddress`; else why not.
    /// With SASL the login must be the From address or be allowed it by SenderMap (like
    /// Postfix's smtpd_sender_login_maps); without SASL the envelope sender must be the From
    /// address or be allowed it by SenderMap.
    func authorisationProblem(_ message: MessageContext, fromAddress: String) -> String? {
        if let login = message.saslLogin {
            if login.lowercased() == fromAddress { return nil }
            if configuration.senderMap?.allows(login: login, address: fromAddress) == true { return nil }
            return "SASL login \(login) may not use \(fromAddress)"
        }
        let sender = EnvelopeAddress.normalise(message.envelopeSender)
        if sender == fromAddress { return nil }
        if configuration.senderMap?.allows(envelopeSender: sender, address: fromAddress) == true { return nil }
        return "envelope sender <\(sender)> may not use \(fromAddress)"
    }

    /// The identity and form for `fromAddress`: the SigningTable's first matching line, or
    /// without a table the identity whose certificate names the address (detached).
    func chooseIdentity(for fromAddress: String) -> Result<(identity: SigningIdentity, form: SignatureForm), Reason> {
        guard let table = configuration.signingTable else {
            guard let identity = identities.identity(forAddress: fromAddress) else {
                return .failure(Reason("no identity for \(fromAddress)"))
            }
            return .success((identity, .detached))
        }
        switch table.lookup(fromAddress) {
        case nil:
            return .failure(Reason("no SigningTable entry for \(fromAddress)"))
        case .skip?:
            return .failure(Reason("SigningTable says skip"))
        case let .sign(name, form)?:
            guard let identity = identities.identity(named: name) else {
                return .failure(Reason("identity \(name) from the SigningTable is not loaded"))
            }
            return .success((identity, form))
        }
    }

    /// Signs the message and returns the header and body edits that turn the original into
    /// the signed message: the Content-* fields move inside the signed entity, everything else
    /// in the outer header stays in order, untouched. With `layer`, what is signed is the
    /// message without that signature layer (part 1's Content-* fields and body); the outer
    /// Content-* fields of the multipart/signed go.
    func signingEdits(_ message: MessageContext, identity: SigningIdentity, form: SignatureForm,
                      replacing layer: SignatureLayer? = nil) throws -> [MessageEdit] {
        if layer == nil, let file = message.body.file,
           let edits = try streamingSigningEdits(message, file: file, identity: identity, form: form) {
            return edits
        }
        var entity = try layer.map { try SignableEntity.make(fields: $0.unwrappedFields(message.fields), body: $0.innerBody) }
            ?? SignableEntity.make(fields: message.fields, body: try message.body.bytes())
        if configuration.headerProtection { entity = entity.protectingHeaders(message.fields) }
        var edits = Self.outerHeaderEdits(message.fields)
        switch form {
        case .detached:
            let signature = try CMSSigner.sign(content: entity.bytes, identity: identity, digest: configuration.digest, detached: true)
            // The entity's bytes become the new body in place: no further copy of a large message.
            let signed = SMIMEWriter.multipartSigned(consuming: (consume entity).bytes, signature: signature, digest: configuration.digest)
            edits.append(.addField(name: "Content-Type", value: HeaderFolding.fold(parameters: signed.contentType)))
            edits.append(.replaceBody(signed.body))
        case .opaque:
            let signedData = try CMSSigner.sign(content: entity.bytes, identity: identity, digest: configuration.digest, detached: false)
            let opaque = SMIMEWriter.opaque(signedData: signedData)
            edits.append(.addField(name: "Content-Type", value: HeaderFolding.fold(parameters: opaque.contentType)))
            edits.append(.addField(name: "Content-Transfer-Encoding", value: " " + opaque.contentTransferEncoding))
            edits.append(.addField(name: "Content-Disposition", value: " " + opaque.contentDisposition))
            edits.append(.replaceBody(opaque.body))
        }
        return edits
    }
}

extension SigningPolicy {
    /// The edits for a body that stays in its spool file, when the 7-bit conversion would keep
    /// it byte for byte (`VerbatimBodyScanner`) or converts it a run of lines at a time
    /// (`StreamingTextConverter`); detached or opaque (`streamingOpaqueEdits`). The entity is the
    /// converted top-level header followed by the file, hashed and written back piece by piece,
    /// so the body is never held in memory. Nil when the message needs the in-memory path.
    func streamingSigningEdits(_ message: MessageContext, file: BodyFile, identity: SigningIdentity,
                               form: SignatureForm) throws -> [MessageEdit]? {
        let boundary = SMIMEWriter.randomBoundary()
        guard let (header, body) = try SignableEntity.streamable(fields: message.fields, file: file, boundary: boundary,
                                                                        protectingHeaders: configuration.headerProtection) else {
            return nil
        }
        if form == .opaque { return try streamingOpaqueEdits(message, header: header, body: body, identity: identity) }
        let signature = try CMSSigner.sign(identity: identity, digest: configuration.digest, detached: true) { write in
            try header.withUnsafeBytes { try write($0) }
            try body.forEachPiece { try write($0) }
        }
        let frame = SMIMEWriter.multipartSignedFrame(boundary: boundary, signature: signature, digest: configuration.digest)
        var edits = Self.outerHeaderEdits(message.fields)
        edits.append(.addField(name: "Content-Type", value: HeaderFolding.fold(parameters: frame.contentType)))
        edits.append(.replaceBody(.file(try body.framed(head: frame.head + header, tail: frame.tail))))
        return edits
    }

    /// Opaque signing of a streamable entity: the SignedData, content inside, is written to a
    /// scratch file in SpoolDirectory as OpenSSL hashes the entity from the spool file, and the
    /// new body is that file in base64, so neither the entity nor the SignedData is in memory.
    func streamingOpaqueEdits(_ message: MessageContext, header: [UInt8], body: BodyFile,
                              identity: SigningIdentity) throws -> [MessageEdit] {
        let signedData = try BodyFile.scratch(in: configuration.spoolDirectory) { fd in
            try CMSSigner.signOpaque(identity: identity, digest: configuration.digest, to: fd) { write in
                try header.withUnsafeBytes { try write($0) }
                try body.forEachPiece { try write($0) }
            }
        }
        let opaque = SMIMEWriter.opaque(signedData: [])
        var edits = Self.outerHeaderEdits(message.fields)
        edits.append(.addField(name: "Content-Type", value: HeaderFolding.fold(parameters: opaque.contentType)))
        edits.append(.addField(name: "Content-Transfer-Encoding", value: " " + opaque.contentTransferEncoding))
        edits.append(.addField(name: "Content-Disposition", value: " " + opaque.contentDisposition))
        edits.append(.replaceBody(.file(try signedData.base64Lines())))
        return edits
    }

    /// The outer-header edits every signed form starts with: every Content-* field of the message
    /// as received goes (it moves inside the signed entity, SignableEntity's movedFieldIndexes,
    /// or with a layer belongs to the layer being removed), and MIME-Version is added if missing.
    static func outerHeaderEdits(_ fields: [HeaderField]) -> [MessageEdit] {
        var edits: [MessageEdit] = SignatureLayer.contentFieldOccurrences(fields).reversed().map {
            .deleteField(name: $0.name, occurrence: $0.occurrence)
        }
        if !fields.contains(where: { $0.hasName("MIME-Version") }) {
            edits.append(.addField(name: "MIME-Version", value: " 1.0"))
        }
        return edits
    }
}

/// A short reason, for `Result` failures that end in a log line.
public struct Reason: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ text: String) { description = text }
}
