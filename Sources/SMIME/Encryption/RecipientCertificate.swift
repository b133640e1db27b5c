// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// A recipient's certificate, to encrypt to (no private key).
///
/// `@unchecked Sendable`: immutable after `init`; the `X509` is only read afterwards (CMS takes
/// its own reference), and its extension cache is filled in `init` (by `CertificateInfo`),
/// before the value is shared between threads. Freed once, in `deinit`.
public final class RecipientCertificate: @unchecked Sendable {
    /// The kind of public key, which decides the RecipientInfo OpenSSL makes.
    public enum KeyKind: String, Sendable {
        /// RSA: KeyTransRecipientInfo (PKCS#1 v1.5 or RSAES-OAEP).
        case rsa
        /// Elliptic curve: KeyAgreeRecipientInfo, ECDH (RFC 5753).
        case ec
        /// Anything else (Ed25519, RSA-PSS, DSA): not usable for encryption here.
        case other
    }

    /// Names, serial, validity and addresses.
    public let info: CertificateInfo
    /// The certificate, DER.
    public let der: [UInt8]
    /// SHA-256 of the DER, lower-case hexadecimal: the certificate's identity in the store.
    public let fingerprint: String
    /// The public key's kind.
    public let keyKind: KeyKind
    /// `X509*`, owned.
    let x509: OpaquePointer

    /// Takes ownership of `x509`.
    init(x509: OpaquePointer) throws {
        self.x509 = x509
        do {
            info = try CertificateInfo(x509: x509)
        } catch {
            X509_free(x509)
            throw error
        }
        let length = i2d_X509(x509, nil)
        var der = [UInt8](repeating: 0, count: Int(max(0, length)))
        if length > 0 {
            _ = der.withUnsafeMutableBufferPointer { buffer -> Int32 in
                var cursor = buffer.baseAddress
                return i2d_X509(x509, &cursor)
            }
        }
        self.der = der
        var md = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var mdLength: UInt32 = 0
        X509_digest(x509, EVP_sha256(), &md, &mdLength)
        fingerprint = md.prefix(Int(mdLength)).map { String(format: "%02x", $0) }.joined()
        switch EVP_PKEY_get_base_id(X509_get0_pubkey(x509)) {
        case EVP_PKEY_RSA: keyKind = .rsa
        case EVP_PKEY_EC: keyKind = .ec
        default: keyKind = .other
        }
        // Fill OpenSSL's per-certificate caches now, before the value is shared.
        _ = X509_get_extension_flags(x509)
        _ = OpenSSL.drainErrors()
    }

    deinit { X509_free(x509) }

    /// Parses one DER certificate.
    public convenience init(der: [UInt8]) throws {
        let cert: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509(nil, &cursor, buffer.count)
        }
        guard let cert else {
            throw SMIMEError(.invalidCertificate, "not a DER certificate", openSSLErrors: OpenSSL.drainErrors())
        }
        try self.init(x509: cert)
    }

    /// Every certificate in PEM text, in order (other PEM blocks are skipped).
    public static func certificates(pem: [UInt8]) throws -> [RecipientCertificate] {
        let certs = try PEMReader.certificates(in: pem)
        var out: [RecipientCertificate] = []
        var failure: Error?
        for cert in certs {
            // Each init takes ownership, also when it throws.
            do { out.append(try RecipientCertificate(x509: cert)) } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
        return out
    }

    /// The certificate as PEM text ("-----BEGIN CERTIFICATE-----", 64-column base64).
    public var pem: String {
        let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN CERTIFICATE-----\n" + base64 + "\n-----END CERTIFICATE-----\n"
    }

    /// "SHA-1" or "MD5" when the certificate itself is signed with a weak digest, else nil.
    public var weakSignatureAlgorithm: String? { RecipientCertificateCheck.weakSignature(x509) }

    /// The public key's bits (RSA modulus, EC field size).
    public var keyBits: Int { Int(EVP_PKEY_get_bits(X509_get0_pubkey(x509))) }
}

extension RecipientCertificate: CustomStringConvertible {
    /// "alice@example.com (RSA-2048, serial 1A, until 2027-01-01T00:00:00Z)".
    public var description: String {
        "\(info.addresses.joined(separator: " ")) (\(info.keyDescription), serial \(info.serialHex), until "
            + ISO8601DateFormatter().string(from: info.notAfter) + ")"
    }
}
