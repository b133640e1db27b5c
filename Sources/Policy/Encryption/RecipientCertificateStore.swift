// SPDX-License-Identifier: Apache-2.0
import Foundation
import SMIME

/// Where a recipient certificate came from.
public enum RecipientCertificateSource: String, Sendable, CaseIterable, Codable {
    /// Taken from inbound mail whose signature verified `smime=pass` (`HarvestRules`).
    case harvested
    /// Loaded from `RecipientCertificateDir` at start or reload.
    case directory
    /// Imported with `smime-milter certs --recipients import`.
    case imported
    /// Read from an LDAP directory (`RecipientCertificateSource`, `certs --recipients sync`).
    case ldap
}

/// One recipient certificate as the store keeps it, for one address.
///
/// Only plain values: the protocol and its records carry no database types, so that another
/// implementation (a network database shared by several gateways) can stand behind it.
public struct StoredRecipientCertificate: Sendable, Equatable {
    /// The address the certificate is kept for (lower-cased; a certificate naming two
    /// addresses is kept once for each).
    public var address: String
    /// SHA-256 of the certificate's DER, lower-case hexadecimal.
    public var fingerprint: String
    /// The certificate, DER.
    public var certificateDER: [UInt8]
    /// CA certificates that came with it (from the signature it was harvested from), DER.
    public var intermediatesDER: [[UInt8]]
    /// The correspondent's SMIMECapabilities, when known (harvested certificates).
    public var capabilities: SMIMECapabilities?
    public var subject: String
    public var issuer: String
    public var serialHex: String
    public var notBefore: Date
    public var notAfter: Date
    public var source: RecipientCertificateSource
    /// When the store first got it, and when it was last seen again (harvested once more, reloaded).
    public var addedAt: Date
    public var lastSeenAt: Date
    /// Whether it is the address's current certificate (false: history).
    public var isCurrent: Bool

    public init(address: String, fingerprint: String, certificateDER: [UInt8], intermediatesDER: [[UInt8]] = [],
                capabilities: SMIMECapabilities? = nil, subject: String, issuer: String, serialHex: String,
                notBefore: Date, notAfter: Date, source: RecipientCertificateSource, addedAt: Date,
                lastSeenAt: Date? = nil, isCurrent: Bool = true) {
        self.address = address.lowercased()
        self.fingerprint = fingerprint
        self.certificateDER = certificateDER
        self.intermediatesDER = intermediatesDER
        self.capabilities = capabilities
        self.subject = subject
        self.issuer = issuer
        self.serialHex = serialHex
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.source = source
        self.addedAt = addedAt
        self.lastSeenAt = lastSeenAt ?? addedAt
        self.isCurrent = isCurrent
    }

    /// A record for `address` from a parsed certificate.
    public init(address: String, certificate: RecipientCertificate, intermediates: [RecipientCertificate] = [],
                capabilities: SMIMECapabilities? = nil, source: RecipientCertificateSource, at time: Date) {
        self.init(address: address, fingerprint: certificate.fingerprint, certificateDER: certificate.der,
                  intermediatesDER: intermediates.map(\.der), capabilities: capabilities,
                  subject: certificate.info.subject, issuer: certificate.info.issuer,
                  serialHex: certificate.info.serialHex, notBefore: certificate.info.notBefore,
                  notAfter: certificate.info.notAfter, source: source, addedAt: time)
    }

    /// Records for every address the certificate names.
    public static func records(for certificate: RecipientCertificate, intermediates: [RecipientCertificate] = [],
                               capabilities: SMIMECapabilities? = nil, source: RecipientCertificateSource,
                               at time: Date) -> [StoredRecipientCertificate] {
        certificate.info.addresses.map {
            StoredRecipientCertificate(address: $0, certificate: certificate, intermediates: intermediates,
                                       capabilities: capabilities, source: source, at: time)
        }
    }

    /// Whether this certificate is newer than `other`: issued later (notBefore), then valid longer.
    public func isNewer(than other: StoredRecipientCertificate) -> Bool {
        notBefore != other.notBefore ? notBefore > other.notBefore : notAfter > other.notAfter
    }

    /// The certificate and its intermediates, parsed again (for encrypting and checking).
    public func parsed() throws -> (certificate: RecipientCertificate, intermediates: [RecipientCertificate]) {
        (try RecipientCertificate(der: certificateDER), try intermediatesDER.map { try RecipientCertificate(der: $0) })
    }

    /// PEM text of the certificate followed by its intermediates (what `certs --recipients export` prints).
    public func pem() throws -> String {
        let (certificate, intermediates) = try parsed()
        return ([certificate] + intermediates).map(\.pem).joined()
    }
}

/// What `upsert` did.
public enum RecipientCertificateUpsert: Sendable, Equatable {
    /// The address had no certificate; this one is now current.
    case inserted
    /// A newer certificate replaced the current one, which is kept as history.
    case replaced(previousFingerprint: String)
    /// The same certificate again: capabilities and last-seen time updated.
    case refreshed
    /// Older than the current one: kept in the history only, the current one stays.
    case keptAsHistory
}

/// One decision about harvesting a certificate from inbound mail, for the harvest log.
public struct HarvestLogEntry: Sendable, Equatable {
    public var time: Date
    /// The signer address the certificate would be kept for (the From address).
    public var address: String
    /// The certificate's fingerprint, when there was one.
    public var fingerprint: String?
    /// Whether it was kept.
    public var kept: Bool
    /// Why (in plain words: "kept", "refused: signature did not pass (fail)", ...).
    public var reason: String
    /// The MTA's queue id of the message, when known.
    public var queueID: String?

    public init(time: Date, address: String, fingerprint: String?, kept: Bool, reason: String, queueID: String? = nil) {
        self.time = time
        self.address = address.lowercased()
        self.fingerprint = fingerprint
        self.kept = kept
        self.reason = reason
        self.queueID = queueID
    }
}

/// An error of the certificate store, in words an operator can act on.
public struct RecipientStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The store cannot be opened or written (path, permissions, locked too long).
        case unavailable
        /// The integrity check failed or the file is not a store.
        case corrupt
        /// The store was written by a newer version with a schema this one does not know.
        case newerSchema
        /// The given value cannot be stored (unparseable certificate).
        case invalid
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// The recipient certificate store: the current certificate for each address, its history and
/// the harvest-decision log.
///
/// Implementations must be safe to call from libmilter's worker threads at once (every method
/// is synchronous and may block briefly on the database) and must leave a consistent store
/// when the process is killed at any point. The SQLite implementation is
/// `RecipientStoreSQLite.SQLiteRecipientStore`; a network database shares this protocol.
public protocol RecipientCertificateStore: Sendable {
    /// The current certificate for an address (lower-cased before lookup), or nil.
    func current(for address: String) throws -> StoredRecipientCertificate?
    /// Every certificate ever kept for an address, newest (by `isNewer(than:)`) first; the
    /// current one is among them.
    func history(for address: String) throws -> [StoredRecipientCertificate]
    /// Keeps a certificate for its address: a newer one replaces the current (which becomes
    /// history), an older one goes to the history only, the same one again is refreshed.
    @discardableResult
    func upsert(_ certificate: StoredRecipientCertificate) throws -> RecipientCertificateUpsert
    /// Removes every certificate (current and history) of an address; returns how many.
    @discardableResult
    func remove(address: String) throws -> Int
    /// The current certificate of every address, ordered by address.
    func list() throws -> [StoredRecipientCertificate]
    /// Appends to the harvest-decision log.
    func logHarvestDecision(_ entry: HarvestLogEntry) throws
    /// The newest `limit` entries of the harvest log, newest first.
    func harvestLog(limit: Int) throws -> [HarvestLogEntry]
}

extension RecipientCertificateStore {
    /// The current certificate of an address and its intermediates as PEM text, or nil when
    /// the address has none (`certs --recipients export`).
    public func export(address: String) throws -> String? {
        try current(for: address)?.pem()
    }
}
