// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// A PKCS#10 certificate request for one mailbox, fitting the CA/B Forum S/MIME Baseline
/// Requirements' mailbox-validated profile: the address as subject commonName and as the
/// rfc822Name of subjectAltName, keyUsage digitalSignature plus keyEncipherment (RSA) or
/// keyAgreement (EC), extendedKeyUsage emailProtection. Made and signed by OpenSSL (X509_REQ).
public final class CertificateRequest: @unchecked Sendable {
    /// The request (owned). Never modified after init.
    let request: OpaquePointer
    /// The mailbox the request is for.
    public let address: String

    /// Makes and signs (SHA-256) a request for `address` with `key`.
    public init(address: String, key: NewKey) throws {
        guard Self.isPlainMailbox(address) else {
            throw SMIMEError(.invalidCertificate, "\(address) is not a plain mailbox address (local@domain)")
        }
        guard let req = X509_REQ_new() else { throw SMIMEError(.openSSL, "out of memory") }
        var ok = false
        defer { if !ok { X509_REQ_free(req) } }
        func check(_ result: Int32, _ what: String) throws {
            guard result == 1 else {
                throw SMIMEError(.openSSL, "cannot make the certificate request: \(what)", openSSLErrors: OpenSSL.drainErrors())
            }
        }
        try check(X509_REQ_set_version(req, 0), "version")
        guard let name = X509_NAME_new() else { throw SMIMEError(.openSSL, "out of memory") }
        defer { X509_NAME_free(name) }
        try check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, address, -1, -1, 0), "subject")
        try check(X509_REQ_set_subject_name(req, name), "subject")
        try check(X509_REQ_set_pubkey(req, key.pkey), "public key")
        guard let exts = smime_sk_X509_EXTENSION_new_null() else { throw SMIMEError(.openSSL, "out of memory") }
        defer { smime_sk_X509_EXTENSION_pop_free(exts) }
        let usage = key.isRSA ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature,keyAgreement"
        for (nid, value) in [(NID_subject_alt_name, "email:\(address)"), (NID_key_usage, usage),
                             (NID_ext_key_usage, "emailProtection")] {
            guard let ext = X509V3_EXT_conf_nid(nil, nil, nid, value) else {
                throw SMIMEError(.openSSL, "cannot make the extension \(value)", openSSLErrors: OpenSSL.drainErrors())
            }
            guard smime_sk_X509_EXTENSION_push(exts, ext) > 0 else {
                X509_EXTENSION_free(ext)
                throw SMIMEError(.openSSL, "out of memory")
            }
        }
        try check(X509_REQ_add_extensions(req, exts), "extensions")
        guard X509_REQ_sign(req, key.pkey, EVP_sha256()) > 0 else {
            throw SMIMEError(.openSSL, "cannot sign the certificate request", openSSLErrors: OpenSSL.drainErrors())
        }
        request = req
        self.address = address
        ok = true
    }

    deinit { X509_REQ_free(request) }

    /// The request as PEM (`-----BEGIN CERTIFICATE REQUEST-----`).
    public func pem() throws -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { throw SMIMEError(.openSSL, "out of memory") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_X509_REQ(bio, request) == 1 else {
            throw SMIMEError(.openSSL, "cannot write the certificate request", openSSLErrors: OpenSSL.drainErrors())
        }
        return OpenSSL.contents(ofMemoryBIO: bio)
    }

    /// local@domain with printable ASCII, no spaces, no path or shell characters: the address is
    /// also a file name in CertificateDir.
    public static func isPlainMailbox(_ address: String) -> Bool {
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), address.count <= 254 else { return false }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_+=@")
        return address.allSatisfy { allowed.contains($0) } && !address.hasPrefix(".") && !address.contains("..")
    }
}
