// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation
import MIME

/// A signer's certificate found in a signed message, with what is needed to decide whether to
/// keep it for encrypting to the signer later (see `HarvestRules` in Policy).
public struct SignerCertificateCandidate: Sendable {
    /// The signer's certificate (from the SignedData's certificates).
    public let certificate: RecipientCertificate
    /// The other certificates the SignedData carried (intermediates to build the chain with).
    public let intermediates: [RecipientCertificate]
    /// The signer's SMIMECapabilities attribute; nil when absent or malformed.
    public let capabilities: SMIMECapabilities?
    /// The SignerInfo's digest/signature/key weakness ("SHA-1 digest", "RSA-1024 key"); nil if none.
    public let weakness: String?

    public init(certificate: RecipientCertificate, intermediates: [RecipientCertificate] = [],
                capabilities: SMIMECapabilities?, weakness: String?) {
        self.certificate = certificate
        self.intermediates = intermediates
        self.capabilities = capabilities
        self.weakness = weakness
    }
}

/// Reads the signers' certificates and SMIMECapabilities out of a signed message. It checks
/// nothing: whether a candidate is kept is decided from the verification report of the same
/// message (which did check) by `HarvestRules`.
public enum SignerHarvest {
    /// At most this many signers are read.
    public static let maximumSigners = 8

    /// The candidates of the outermost signature of a message (multipart/signed or opaque
    /// signed-data, found as the verifier finds it); empty when unsigned, encrypted or garbled.
    public static func candidates(fields: [HeaderField], body: [UInt8],
                                  limits: MIMELimits = MIMELimits(maxDepth: 32, maxParts: 1_000)) -> [SignerCertificateCandidate] {
        guard let root = try? MIMEParser.parse(fields: fields, body: body, limits: limits),
              let found = SignatureLocator.locate(root)
        else { return [] }
        let entity: MIMEEntity
        switch found {
        case .detached(_, _, let signature): entity = signature
        case .pkcs7Mime(let part): entity = part
        case .brokenDetached: return []
        }
        let raw = Array(entity.body)
        let der: [UInt8]
        if entity.transferEncoding == .base64 {
            guard let decoded = Data(base64Encoded: Data(raw), options: .ignoreUnknownCharacters) else { return [] }
            der = [UInt8](decoded)
        } else {
            der = raw
        }
        return candidates(signedData: der)
    }

    /// The candidates of a DER SignedData; empty when it is not one.
    public static func candidates(signedData der: [UInt8]) -> [SignerCertificateCandidate] {
        ERR_clear_error()
        defer { ERR_clear_error() }
        let parsed = CMSParser.parse(der)   // the certificates the verifier decoded already
        guard let cms = parsed else { return [] }
        defer { CMS_ContentInfo_free(cms) }
        guard CMSVerifier.kind(of: cms) == .signedData, let infos = CMS_get0_SignerInfos(cms) else { return [] }
        // Match the SignedData's certificates to the SignerInfos (what CMS_verify does first).
        _ = CMS_set1_signers_certs(cms, nil, 0)
        var carried: [RecipientCertificate] = []
        if let certs = CMS_get1_certs(cms) {
            defer { smime_sk_X509_pop_free(certs) }
            for index in 0..<min(50, max(0, Int(smime_sk_X509_num(certs)))) {
                guard let cert = smime_sk_X509_value(certs, Int32(index)), X509_up_ref(cert) == 1,
                      let parsed = try? RecipientCertificate(x509: cert) else { continue }
                carried.append(parsed)
            }
        }
        var out: [SignerCertificateCandidate] = []
        for index in 0..<min(maximumSigners, max(0, Int(smime_sk_CMS_SignerInfo_num(infos)))) {
            guard let info = smime_sk_CMS_SignerInfo_value(infos, Int32(index)) else { continue }
            var cert: OpaquePointer?
            var digest: UnsafeMutablePointer<X509_ALGOR>?
            var signature: UnsafeMutablePointer<X509_ALGOR>?
            CMS_SignerInfo_get0_algs(info, nil, &cert, &digest, &signature)
            guard let cert, X509_up_ref(cert) == 1, let recipient = try? RecipientCertificate(x509: cert) else { continue }
            let weakness = CMSVerifier.weakness(digestNID: nid(digest), signatureNID: nid(signature),
                                                key: X509_get0_pubkey(cert))
            let capabilities = (try? SMIMECapabilities.of(signerInfo: info)) ?? nil
            let intermediates = carried.filter { $0.fingerprint != recipient.fingerprint && $0.info.isCA }
            out.append(SignerCertificateCandidate(certificate: recipient, intermediates: intermediates,
                                                  capabilities: capabilities, weakness: weakness))
        }
        return out
    }

    private static func nid(_ algorithm: UnsafeMutablePointer<X509_ALGOR>?) -> Int32 {
        guard let algorithm else { return NID_undef }
        var object: OpaquePointer?
        X509_ALGOR_get0(&object, nil, nil, algorithm)
        return object.map { OBJ_obj2nid($0) } ?? NID_undef
    }
}
