// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// Where a revocation check (OCSP, CRL fetching) slots into `RecipientCertificateCheck`.
///
/// Called only for a certificate that passed every other check, with its validated chain
/// (leaf first). Must be safe to call from many threads at once.
public protocol RecipientRevocationCheck: Sendable {
    /// Nil when the certificate may be used, else why not ("revoked on ...", "OCSP unreachable").
    func problem(with certificate: RecipientCertificate, chain: [RecipientCertificate], at time: Date) -> String?
}

/// The revocation check used until one is configured: accepts everything (CRLs loaded with the
/// trust anchors are still checked by path validation).
public struct NoRevocationCheck: RecipientRevocationCheck {
    public init() {}
    public func problem(with certificate: RecipientCertificate, chain: [RecipientCertificate], at time: Date) -> String? { nil }
}

/// Whether a recipient's certificate may be encrypted to now: the check at the point of use.
///
/// A certificate counts only if it is within validity, chains to the trust anchors (OpenSSL
/// `X509_verify_cert` over `TrustStore`, CRLs for issuers that have one), its keyUsage (when
/// present) allows keyEncipherment for RSA or keyAgreement for EC, its extendedKeyUsage (when
/// present) has emailProtection or anyExtendedKeyUsage, nothing in its chain is signed with MD5
/// or SHA-1, an RSA key has at least 2048 bits, and the revocation hook has no objection.
/// Stateless and safe to share between threads (the TrustStore is).
public struct RecipientCertificateCheck: Sendable {
    public let trust: TrustStore
    public let revocation: any RecipientRevocationCheck
    /// Longest accepted chain.
    public var maxChainDepth: Int

    public init(trust: TrustStore, revocation: any RecipientRevocationCheck = NoRevocationCheck(), maxChainDepth: Int = 10) {
        self.trust = trust
        self.revocation = revocation
        self.maxChainDepth = maxChainDepth
    }

    /// Nil when `certificate` is usable at `time`, else the reason in plain words.
    ///
    /// - Parameter intermediates: CA certificates that may complete the chain (those the
    ///   correspondent sent with their signature); they are not trusted by themselves.
    public func problem(with certificate: RecipientCertificate, intermediates: [RecipientCertificate] = [],
                        at time: Date) -> String? {
        ERR_clear_error()
        defer { _ = OpenSSL.drainErrors() }
        let cert = certificate.x509
        let info = certificate.info
        let formatter = ISO8601DateFormatter()
        if time < info.notBefore { return "certificate is not yet valid (valid from \(formatter.string(from: info.notBefore)))" }
        if time > info.notAfter { return "certificate expired on \(formatter.string(from: info.notAfter))" }
        if info.isCA { return "a CA certificate, not a recipient's" }
        let flags = X509_get_extension_flags(cert)
        if flags & UInt32(EXFLAG_INVALID) != 0 { return "certificate has malformed or duplicate extensions" }
        switch certificate.keyKind {
        case .rsa:
            if certificate.keyBits < 2048 { return "weak key: \(info.keyDescription) (at least RSA-2048)" }
            if flags & UInt32(EXFLAG_KUSAGE) != 0, X509_get_key_usage(cert) & UInt32(KU_KEY_ENCIPHERMENT) == 0 {
                return "keyUsage does not allow keyEncipherment"
            }
        case .ec:
            if flags & UInt32(EXFLAG_KUSAGE) != 0, X509_get_key_usage(cert) & UInt32(KU_KEY_AGREEMENT) == 0 {
                return "keyUsage does not allow keyAgreement"
            }
        case .other:
            return "a \(info.keyDescription) key cannot be encrypted to"
        }
        if flags & UInt32(EXFLAG_XKUSAGE) != 0,
           X509_get_extended_key_usage(cert) & UInt32(XKU_SMIME | XKU_ANYEKU) == 0 {
            return "extendedKeyUsage does not include emailProtection"
        }
        let chain: [OpaquePointer]
        switch validatedChain(cert, intermediates: intermediates, at: time) {
        case .failure(let reason): return reason
        case .success(let built): chain = built
        }
        // Every signature below the trust anchor (the anchor's self-signature does not count).
        for (depth, member) in chain.dropLast().enumerated() {
            if let weak = Self.weakSignature(member) {
                return depth == 0 ? "weak algorithm: the certificate is signed with \(weak)"
                    : "weak algorithm: a CA certificate in the chain is signed with \(weak)"
            }
        }
        let chainCertificates = chain.dropFirst().compactMap { member -> RecipientCertificate? in
            guard X509_up_ref(member) == 1 else { return nil }
            return try? RecipientCertificate(x509: member)
        }
        return revocation.problem(with: certificate, chain: [certificate] + chainCertificates, at: time)
    }

    private enum Chain {
        case success([OpaquePointer])
        case failure(String)
    }

    /// The verified chain (leaf first, borrowed pointers valid while `cert` and the store live) or why not.
    private func validatedChain(_ cert: OpaquePointer, intermediates: [RecipientCertificate], at time: Date) -> Chain {
        guard let ctx = X509_STORE_CTX_new(), let untrusted = smime_sk_X509_new_null() else {
            return .failure("out of memory")
        }
        defer { X509_STORE_CTX_free(ctx); smime_sk_X509_free(untrusted) }
        for intermediate in intermediates { _ = smime_sk_X509_push(untrusted, intermediate.x509) }
        guard X509_STORE_CTX_init(ctx, trust.store, cert, untrusted) == 1, let param = X509_STORE_CTX_get0_param(ctx) else {
            return .failure("cannot set up certificate validation")
        }
        X509_VERIFY_PARAM_set_time(param, time_t(time.timeIntervalSince1970.rounded(.down)))
        X509_VERIFY_PARAM_set_depth(param, Int32(maxChainDepth))
        if trust.hasCRL(forIssuer: X509_get_issuer_name(cert)) {
            X509_VERIFY_PARAM_set_flags(param, UInt(X509_V_FLAG_CRL_CHECK))
        }
        guard X509_verify_cert(ctx) == 1 else {
            let code = X509_STORE_CTX_get_error(ctx)
            let depth = Int(X509_STORE_CTX_get_error_depth(ctx))
            return .failure(CMSVerifier.words(forVerifyError: code, depth: depth)
                .replacingOccurrences(of: "the signer's certificate", with: "the recipient's certificate"))
        }
        guard let built = X509_STORE_CTX_get0_chain(ctx) else { return .failure("no chain") }
        var chain: [OpaquePointer] = []
        for index in 0..<max(0, Int(smime_sk_X509_num(built))) {
            if let member = smime_sk_X509_value(built, Int32(index)) { chain.append(member) }
        }
        return .success(chain)
    }

    /// "SHA-1" or "MD5" when the certificate's own signature uses it.
    static func weakSignature(_ cert: OpaquePointer) -> String? {
        var digest: Int32 = NID_undef
        var key: Int32 = NID_undef
        guard OBJ_find_sigid_algs(X509_get_signature_nid(cert), &digest, &key) == 1 else { return nil }
        switch digest {
        case NID_sha1: return "SHA-1"
        case NID_md5: return "MD5"
        case NID_md2: return "MD2"
        case NID_md4: return "MD4"
        default: return nil
        }
    }
}
