// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// The rules a certificate must meet before we sign with it (RFC 8550 §4.4, CA/B S/MIME BR).
enum IdentityChecks {
    /// Returns the reason `cert` cannot sign mail at `now`, or nil when it can.
    ///
    /// keyUsage: when present it must include digitalSignature. nonRepudiation
    /// (contentCommitment) alone is not accepted: RFC 8550 lets a *verifier* accept it, but
    /// the S/MIME Baseline Requirements and most CAs put digitalSignature on every signing
    /// certificate, and signing with a nonRepudiation-only key is a commitment statement
    /// an automatic signer should not make. extendedKeyUsage: when present it must include
    /// emailProtection or anyExtendedKeyUsage (what OpenSSL's `smimesign` purpose accepts).
    /// With `allowExpired`, an expired certificate passes the time check (it is loaded only so
    /// that mail for its sender gets `OnExpiredCertificate`, never to sign with it).
    static func problem(with cert: OpaquePointer, info: CertificateInfo, now: Date, allowExpired: Bool = false, forDecryption: Bool = false) -> String? {
        var time = time_t(now.timeIntervalSince1970.rounded(.down))
        let formatter = ISO8601DateFormatter()
        let startsAfterNow = X509_cmp_time(X509_get0_notBefore(cert), &time)
        let endsBeforeNow = X509_cmp_time(X509_get0_notAfter(cert), &time)
        defer { _ = OpenSSL.drainErrors() }
        if startsAfterNow == 0 || endsBeforeNow == 0 {
            return "certificate validity dates cannot be read"
        }
        if startsAfterNow > 0 {
            return "certificate is not yet valid (valid from \(formatter.string(from: info.notBefore)))"
        }
        if endsBeforeNow < 0 && !allowExpired {
            return "certificate expired on \(formatter.string(from: info.notAfter))"
        }
        let flags = X509_get_extension_flags(cert)
        if flags & UInt32(EXFLAG_INVALID) != 0 {
            return "certificate has malformed or duplicate extensions"
        }
        if info.isCA {
            return "certificate is a CA certificate, not an end-entity certificate"
        }
        // A key loaded only to decrypt (`forDecryption`) may be an encryption-only certificate.
        if flags & UInt32(EXFLAG_KUSAGE) != 0, !forDecryption,
           X509_get_key_usage(cert) & UInt32(KU_DIGITAL_SIGNATURE) == 0 {
            return "keyUsage does not include digitalSignature; the certificate may not sign"
        }
        if flags & UInt32(EXFLAG_XKUSAGE) != 0,
           X509_get_extended_key_usage(cert) & UInt32(XKU_SMIME | XKU_ANYEKU) == 0 {
            return "extendedKeyUsage does not include emailProtection (S/MIME)"
        }
        if info.addresses.isEmpty {
            return "certificate has no e-mail address (no subjectAltName rfc822Name, no subject emailAddress)"
        }
        return nil
    }
}
