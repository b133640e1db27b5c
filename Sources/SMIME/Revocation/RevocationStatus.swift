// SPDX-License-Identifier: Apache-2.0
import Foundation

/// How certificates' revocation status is found (`RevocationCheck`), in order of preference.
public enum RevocationMethod: String, Sendable, CaseIterable {
    case ocsp, crl
}

/// The status of one certificate.
public enum RevocationStatus: Sendable, Equatable {
    /// Not revoked, by a verified OCSP response or CRL.
    case good
    /// Revoked: the reason (RFC 5280 CRLReason name) and date, when the source gives them.
    case revoked(reason: String?, date: Date?)
    /// No answer that can be trusted (responder down, stale CRL, unauthorised responder...).
    case unknown(String)
    /// Nothing to check: the certificate names no OCSP responder or CRL distribution point for
    /// the configured methods, and no CRLDir CRL covers it.
    case unchecked

    /// `good`, `revoked`, `unknown`, `unchecked` (log lines, metrics, JSON).
    public var keyword: String {
        switch self {
        case .good: return "good"
        case .revoked: return "revoked"
        case .unknown: return "unknown"
        case .unchecked: return "unchecked"
        }
    }
}

/// One certificate of a chain and what was found about it.
public struct CertificateRevocation: Sendable, Equatable {
    /// The certificate's subject (RFC 2253).
    public var subject: String
    /// 0 for the end-entity certificate, 1 for its issuer, ...
    public var depth: Int
    public var status: RevocationStatus
    /// Where the status came from: `ocsp URL`, `crl URL`, `cache: ocsp URL`, `CRLDir`, or
    /// `none` (see `docs/revocation.md`).
    public var source: String

    public init(subject: String, depth: Int, status: RevocationStatus, source: String) {
        self.subject = subject
        self.depth = depth
        self.status = status
        self.source = source
    }

    /// "the certificate" or "a CA certificate in the chain (depth N)".
    public var which: String {
        depth == 0 ? "the certificate" : "a CA certificate in the chain (depth \(depth))"
    }

    /// One line: "good by ocsp http://...", "revoked (keyCompromise, 2026-01-01T00:00:00Z) by crl ...".
    public var line: String {
        switch status {
        case .good: return "good by \(source)"
        case .unchecked: return "not checked (no OCSP responder or CRL distribution point)"
        case .unknown(let why): return "unknown (\(why)) by \(source)"
        case .revoked: return "revoked (\(revokedDetails)) by \(source)"
        }
    }

    /// "keyCompromise, 2026-01-01T00:00:00Z" (what is known of it).
    var revokedDetails: String {
        guard case let .revoked(reason, date) = status else { return "" }
        let parts = [reason ?? "no reason given", date.map { ISO8601DateFormatter().string(from: $0) }].compactMap { $0 }
        return parts.joined(separator: ", ")
    }
}

/// The revocation status of a whole chain.
public struct ChainRevocation: Sendable, Equatable {
    /// The checked certificates, end-entity first (the trust anchor is not checked).
    public var certificates: [CertificateRevocation]

    public init(certificates: [CertificateRevocation]) {
        self.certificates = certificates
    }

    /// The first revoked certificate, if any.
    public var revoked: CertificateRevocation? {
        certificates.first { if case .revoked = $0.status { return true } else { return false } }
    }

    /// The first certificate whose status is unknown, if any.
    public var unknown: CertificateRevocation? {
        certificates.first { if case .unknown = $0.status { return true } else { return false } }
    }

    /// The status of the chain: revoked when any certificate is, else unknown when any is,
    /// else good when any was checked, else unchecked.
    public var overall: RevocationStatus {
        if let revoked { return revoked.status }
        if let unknown { return unknown.status }
        return certificates.contains { $0.status == .good } ? .good : .unchecked
    }

    /// "certificate revoked: keyCompromise, 2026-01-01T00:00:00Z; ocsp http://..." for the
    /// Authentication-Results comment (no parentheses: the comment cannot nest them); a CA
    /// certificate says which one.
    public var revokedReason: String? {
        guard let revoked else { return nil }
        let who = revoked.depth == 0 ? "" : " CA certificate at depth \(revoked.depth),"
        return "certificate revoked:\(who) \(revoked.revokedDetails); \(revoked.source)"
    }

    /// "revocation status unknown: why; source".
    public var unknownReason: String? {
        guard let unknown, case let .unknown(why) = unknown.status else { return nil }
        let who = unknown.depth == 0 ? "" : " of the CA certificate at depth \(unknown.depth)"
        return "revocation status\(who) unknown: \(why); \(unknown.source)"
    }
}

/// What the checker reports as it works, for the metrics (the SMIME module has none of its own).
public struct RevocationEvents: Sendable {
    /// One certificate checked: the kind of source (`ocsp`, `crl`, `cache`, `crldir`, `none`)
    /// and the status keyword.
    public var checked: @Sendable (_ source: String, _ status: String) -> Void
    /// A cached response or CRL was used (`ocsp` or `crl`).
    public var cacheHit: @Sendable (_ kind: String) -> Void
    /// A fetch ended: kind, seconds taken, whether it got a response.
    public var fetched: @Sendable (_ kind: String, _ seconds: Double, _ ok: Bool) -> Void

    public init(checked: @escaping @Sendable (String, String) -> Void = { _, _ in },
                cacheHit: @escaping @Sendable (String) -> Void = { _ in },
                fetched: @escaping @Sendable (String, Double, Bool) -> Void = { _, _, _ in }) {
        self.checked = checked
        self.cacheHit = cacheHit
        self.fetched = fetched
    }
}
