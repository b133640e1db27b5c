// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// A certificate, its private key and its intermediate chain, loaded and checked for signing.
///
/// The private key is in memory (PEM, PKCS#12) or stays on a PKCS#11 token (`TokenKey`).
///
/// `@unchecked Sendable` is safe because the class is immutable after `init`: the OpenSSL
/// objects are only *read* afterwards (CMS_sign takes its own references, and OpenSSL 3
/// allows concurrent signing with one EVP_PKEY and concurrent reads of an X509); every
/// lazily computed OpenSSL cache (certificate extensions) is filled during loading, before
/// the identity is shared. The objects are freed exactly once, in `deinit`.
public final class SigningIdentity: @unchecked Sendable {
    /// The identity's name: the file stem in the CertificateDir ("alice" for alice.pem).
    public let name: String
    /// The facts read from the end-entity certificate.
    public let certificateInfo: CertificateInfo
    /// Subjects of the intermediate certificates sent with signatures, in order (never the root).
    public let chainSubjects: [String]
    /// The files the identity was loaded from (certificate file, then key or passphrase file).
    public let sourceFiles: [String]
    /// The private key, e.g. "RSA-2048", "EC-P-256", "Ed25519".
    public let keyDescription: String

    /// Lower-cased e-mail addresses of the certificate (see `CertificateInfo.addresses`).
    public var addresses: [String] { certificateInfo.addresses }
    /// Subject DN, RFC 2253 one-line form.
    public var subject: String { certificateInfo.subject }
    /// Issuer DN, RFC 2253 one-line form.
    public var issuer: String { certificateInfo.issuer }
    /// Certificate serial number, upper-case hexadecimal.
    public var serialHex: String { certificateInfo.serialHex }
    /// Start of the certificate's validity.
    public var notBefore: Date { certificateInfo.notBefore }
    /// End of the certificate's validity.
    public var notAfter: Date { certificateInfo.notAfter }

    /// `X509*`, owned.
    let certificate: OpaquePointer
    /// Where the private key is: an owned `EVP_PKEY*` in memory, or on a PKCS#11 token.
    enum PrivateKey {
        case memory(OpaquePointer)
        case token(TokenKey)
    }
    let privateKey: PrivateKey
    /// `STACK_OF(X509)*` of intermediates, owned (the stack and one reference per element).
    let chain: OpaquePointer
    /// The DER of the ESS signingCertificateV2 value for each digest, made once at load: the
    /// same bytes CMS_add1_signer would build (hashing the certificate) for every signature.
    let essSigningCertificateV2: [DigestAlgorithm: [UInt8]]

    /// Takes ownership of `certificate`, `privateKey` and `chain`.
    init(name: String, certificate: OpaquePointer, privateKey: PrivateKey, chain: OpaquePointer,
         certificateInfo: CertificateInfo, chainSubjects: [String], sourceFiles: [String]) {
        self.name = name
        self.certificate = certificate
        self.privateKey = privateKey
        self.chain = chain
        self.certificateInfo = certificateInfo
        self.chainSubjects = chainSubjects
        self.sourceFiles = sourceFiles
        var ess: [DigestAlgorithm: [UInt8]] = [:]
        for digest in DigestAlgorithm.allCases {
            guard let md = digest.evpMD else { continue }
            var der: UnsafeMutablePointer<UInt8>?
            let length = smime_ess_signing_cert_v2_der(md, certificate, &der)
            if length > 0, let der { ess[digest] = Array(UnsafeBufferPointer(start: der, count: Int(length))) }
            if let der { smime_OPENSSL_free(der) }
        }
        _ = OpenSSL.drainErrors()
        self.essSigningCertificateV2 = ess
        switch privateKey {
        case let .memory(key): self.keyDescription = CertificateInfo.keyDescription(key)
        case .token: self.keyDescription = CertificateInfo.keyDescription(X509_get0_pubkey(certificate))
        }
    }

    deinit {
        X509_free(certificate)
        if case let .memory(key) = privateKey { EVP_PKEY_free(key) }
        smime_sk_X509_pop_free(chain)
    }

    /// The only digest this key can sign with, if it dictates one: Ed25519 signs with
    /// SHA-512 (RFC 8419 §3.1). Nil for RSA and ECDSA, which take any `DigestAlgorithm`.
    public var requiredDigest: DigestAlgorithm? {
        keyDescription == "Ed25519" ? .sha512 : nil
    }

    /// The token key, when the private key is on a PKCS#11 token.
    public var tokenKey: TokenKey? {
        if case let .token(key) = privateKey { return key }
        return nil
    }

    /// Runs `body` with the `EVP_PKEY*`; for a token key, holding a token session.
    func withPrivateKey<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        switch privateKey {
        case let .memory(key): return try body(key)
        case let .token(key): return try key.withKey(body)
        }
    }

    /// Whether `address` (any case) is one of the certificate's addresses.
    public func matches(address: String) -> Bool {
        addresses.contains(address.lowercased())
    }
}

extension SigningIdentity: CustomStringConvertible {
    /// "alice (RSA-2048, alice@example.com, until 2027-01-01T00:00:00Z)": no key material.
    public var description: String {
        let until = ISO8601DateFormatter().string(from: notAfter)
        return "\(name) (\(keyDescription), \(addresses.joined(separator: " ")), until \(until))"
    }
}
