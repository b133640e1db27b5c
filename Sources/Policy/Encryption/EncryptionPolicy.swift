// SPDX-License-Identifier: Apache-2.0
import SMIME

/// The class of one recipient: what the EncryptionTable says plus whether a usable certificate
/// is known. Recipients of one SMTP transaction must share a class (see `EncryptionPolicy.atRecipient`).
public struct RecipientClass: Sendable, Hashable, CustomStringConvertible {
    /// The table's class; nil when no line matches (the mail is sent as before).
    public var encryption: EncryptionClass?
    public var signing: RecipientSigning
    /// Whether a usable certificate is known (counted only for encrypt and require).
    public var hasUsableCertificate: Bool
    /// Inbound: whether encrypted mail to this recipient is decrypted (`DecryptionTable`
    /// decrypt); nil for every other recipient and for outbound mail.
    public var decryption: DecryptionClass?

    public init(encryption: EncryptionClass?, signing: RecipientSigning, hasUsableCertificate: Bool,
                decryption: DecryptionClass? = nil) {
        self.encryption = encryption
        self.signing = signing
        self.decryption = decryption
        let counts = encryption == .encrypt || encryption == .require
        self.hasUsableCertificate = counts && hasUsableCertificate
    }

    /// Whether mail to this recipient would be encrypted if it were alone.
    public var encryptsAlone: Bool { hasUsableCertificate }

    /// "require, certificate, sign=skip".
    public var description: String {
        var parts = [encryption?.rawValue ?? "unlisted"]
        if encryption == .encrypt || encryption == .require { parts.append(hasUsableCertificate ? "certificate" : "no certificate") }
        if signing != .asConfigured { parts.append("sign=" + signing.rawValue) }
        if let decryption { parts = [decryption.rawValue] }
        return parts.joined(separator: ", ")
    }
}

/// What to answer at RCPT time.
public enum RecipientVerdict: Sendable, Equatable {
    /// Accept; this recipient's class (the transaction's, when it is the first).
    case accept(RecipientClass)
    /// Defer this recipient with `452 4.5.3`: its class differs from the transaction's, and the
    /// client retries it in a transaction of its own.
    case deferToOwnTransaction(reply: SMTPReply)
    /// A `require` recipient without a usable certificate: tempfail (4xx) or reject (5xx).
    case refuse(reply: SMTPReply)
}

/// The outcome for a whole message at end-of-message.
public enum EncryptionDecision: Sendable, Equatable {
    /// Encrypt to these recipients (lower-cased envelope addresses), plus the archive certificate
    /// when configured, with this cipher.
    case encrypt(recipients: [String], cipher: ContentCipher, archive: Bool)
    /// Send as without encryption; the reason is for the log line ("not every recipient has a
    /// usable certificate: b@x", "no recipient is listed for encryption").
    case plaintext(reason: String)
    /// Refuse the message (tempfail or reject): a `require` recipient would otherwise get
    /// plaintext.
    case refuse(reply: SMTPReply, reason: String)
}

/// One recipient as the end-of-message decision sees it.
public struct RecipientFacts: Sendable, Equatable {
    public var address: String
    public var recipientClass: RecipientClass
    /// The usable certificate's capabilities (nil when unknown or no certificate).
    public var capabilities: SMIMECapabilities?

    public init(address: String, recipientClass: RecipientClass, capabilities: SMIMECapabilities? = nil) {
        self.address = address.lowercased()
        self.recipientClass = recipientClass
        self.capabilities = capabilities
    }
}

/// The encryption decisions, as pure functions of the table, the settings and the facts the
/// binding collects; no I/O. The binding calls `classify` and `atRecipient` at RCPT time (after
/// looking the recipient's certificate up in the store and checking it with
/// `RecipientCertificateCheck`), and `atEndOfMessage` before signing and encrypting.
public struct EncryptionPolicy: Sendable, Equatable {
    public let table: EncryptionTable
    public var cipher: EncryptionCipherChoice
    public var onMissingCertificate: MissingRecipientCertificateAction
    /// Whether an archive certificate (`ArchiveCertificate`) gets a copy of every encrypted message.
    public var hasArchive: Bool

    public init(table: EncryptionTable, cipher: EncryptionCipherChoice = .auto,
                onMissingCertificate: MissingRecipientCertificateAction = .tempfail, hasArchive: Bool = false) {
        self.table = table
        self.cipher = cipher
        self.onMissingCertificate = onMissingCertificate
        self.hasArchive = hasArchive
    }

    /// The recipient's class from the table and whether a usable certificate is known.
    /// Whether the class of `recipient` depends on a certificate (`encrypt` and `require`):
    /// only then is the store asked, so that mail to `never` and unlisted recipients costs no
    /// lookup and is not held up when the store cannot answer.
    public func needsCertificate(_ recipient: String) -> Bool {
        let encryption = table.match(recipient)?.encryption
        return encryption == .encrypt || encryption == .require
    }

    public func classify(_ recipient: String, hasUsableCertificate: Bool) -> RecipientClass {
        let rule = table.match(recipient)
        return RecipientClass(encryption: rule?.encryption, signing: rule?.signing ?? .asConfigured,
                              hasUsableCertificate: hasUsableCertificate)
    }

    /// The RCPT-time answer: the first accepted recipient fixes the transaction's class; a later
    /// recipient of another class is deferred with 452 4.5.3, so that the client (an MTA such as
    /// Postfix) retries it in a transaction of its own; a `require` recipient without a usable
    /// certificate is refused at once.
    ///
    /// - Parameters:
    ///   - recipientClass: from `classify`.
    ///   - transactionClass: the class of the recipients accepted so far, nil for the first.
    public func atRecipient(_ recipientClass: RecipientClass, transactionClass: RecipientClass?) -> RecipientVerdict {
        if recipientClass.encryption == .require && !recipientClass.hasUsableCertificate {
            return .refuse(reply: missingCertificateReply)
        }
        guard let transactionClass else { return .accept(recipientClass) }
        guard transactionClass == recipientClass else {
            return .deferToOwnTransaction(reply: SMTPReply(code: "452", xcode: "4.5.3",
                text: "Recipient needs a transaction of its own (encryption class \(recipientClass), not \(transactionClass)); try again"))
        }
        return .accept(recipientClass)
    }

    /// The reply for a `require` recipient without a usable certificate.
    public var missingCertificateReply: SMTPReply {
        switch onMissingCertificate {
        case .tempfail:
            return SMTPReply(code: "450", xcode: "4.7.0", text: "No usable encryption certificate for this recipient yet; try again later")
        case .reject:
            return SMTPReply(code: "550", xcode: "5.7.1", text: "No usable encryption certificate for this recipient; mail to it must be encrypted")
        }
    }

    /// The decision for a whole message. Also right when the RCPT-time split did not happen
    /// (mail submitted with sendmail(1), where Postfix cannot defer single recipients): a
    /// `require` recipient then makes a mixed message be refused rather than sent in plaintext.
    public func atEndOfMessage(_ recipients: [RecipientFacts]) -> EncryptionDecision {
        guard !recipients.isEmpty else { return .plaintext(reason: "no recipients") }
        let required = recipients.filter { $0.recipientClass.encryption == .require }
        if let missing = required.first(where: { !$0.recipientClass.hasUsableCertificate }) {
            return .refuse(reply: missingCertificateReply,
                           reason: "no usable certificate for \(missing.address), which must not receive plaintext")
        }
        let blockers = recipients.filter { !$0.recipientClass.hasUsableCertificate || $0.recipientClass.encryption == .never }
        if blockers.isEmpty {
            return .encrypt(recipients: recipients.map(\.address), cipher: contentCipher(for: recipients), archive: hasArchive)
        }
        if !required.isEmpty {
            return .refuse(reply: SMTPReply(code: "451", xcode: "4.5.3",
                                            text: "Recipients differ in encryption class; send to them separately"),
                           reason: "recipients differ in class: \(required.map(\.address).joined(separator: ", ")) must be encrypted, "
                           + "\(blockers.map(\.address).joined(separator: ", ")) cannot be")
        }
        if recipients.allSatisfy({ $0.recipientClass.encryption == nil || $0.recipientClass.encryption == .never }) {
            return .plaintext(reason: "no recipient is listed for encryption")
        }
        let never = blockers.filter { $0.recipientClass.encryption == .never }
        if !never.isEmpty {
            return .plaintext(reason: "never encrypted for \(never.map(\.address).joined(separator: ", "))")
        }
        return .plaintext(reason: "not every recipient has a usable certificate: \(blockers.map(\.address).joined(separator: ", "))")
    }

    /// The content cipher for these recipients (the archive copy is decrypted with the
    /// organisation's own tools and does not hold the choice back).
    public func contentCipher(for recipients: [RecipientFacts]) -> ContentCipher {
        switch cipher {
        case .aes256CBC: return .aes256CBC
        case .aes256GCM: return .aes256GCM
        case .auto: return SMIMECapabilities.cipher(for: recipients.map(\.capabilities))
        }
    }

    /// The signing choice for a message: the recipients' common `sign=` choice; when they
    /// differ (a message that was not split), as the SigningTable says.
    public static func signing(for recipients: [RecipientFacts]) -> RecipientSigning {
        let choices = Set(recipients.map(\.recipientClass.signing))
        return choices.count == 1 ? choices.first ?? .asConfigured : .asConfigured
    }
}
