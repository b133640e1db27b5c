// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

extension RevocationChecker {
    /// Checks the certificates of PEM text, end-entity first, each followed by its issuer
    /// (tests, and `verify` on a bare chain).
    public func check(pem: [UInt8], deadline: Date? = nil) -> ChainRevocation {
        let items = TrustStore.pemItems(pem)
        defer { items.free() }
        return check(chain: items.certificates, deadline: deadline)
    }

    /// Checks one of our signing identities: its certificate against its own issuer (the
    /// first certificate of its chain). The responder and the CRL must be vouched for by that
    /// issuer, which we already rely on (the identity's file holds it), so it is the trust
    /// anchor of this check (`X509_V_FLAG_PARTIAL_CHAIN`); the trust store's certificates
    /// complete longer chains.
    public func check(identity: SigningIdentity, deadline: Date? = nil) -> ChainRevocation {
        var chain = [identity.certificate]
        var pem: [UInt8] = []
        let count = Int(smime_sk_X509_num(identity.chain))
        for index in 0..<max(0, count) {
            guard let member = smime_sk_X509_value(identity.chain, Int32(index)) else { continue }
            chain.append(member)
            if let bio = BIO_new(BIO_s_mem()) {
                PEM_write_bio_X509(bio, member)
                pem += OpenSSL.contents(ofMemoryBIO: bio)
                BIO_free(bio)
            }
        }
        guard chain.count > 1, let issuers = try? TrustStore(pem: pem, trustNonRootCertificates: true) else {
            return ChainRevocation(certificates: [CertificateRevocation(
                subject: identity.subject, depth: 0, status: .unknown("the identity's file holds no issuer certificate"),
                source: "none")])
        }
        let own = RevocationChecker(sharing: self, trust: issuers)
        // Only the identity's own certificate: its issuer is the anchor of this check.
        return own.check(chain: Array(chain.prefix(2)), deadline: deadline)
    }
}

extension IdentityStore {
    /// The store without the identities whose certificate is revoked (each becomes a refused
    /// file, so mail for it is handled as for any identity that did not load).
    public func removing(revoked: [String: String]) -> IdentityStore {
        guard !revoked.isEmpty else { return self }
        let problems = identities.compactMap { identity in
            revoked[identity.name].map { IdentityProblem(file: identity.sourceFiles.first ?? identity.name, reason: $0) }
        }
        return IdentityStore(identities: identities.filter { revoked[$0.name] == nil },
                             rejected: rejected + problems, expired: expired)
    }
}
