// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// The check of a certificate a CA issued before it is installed: it holds our public key,
/// names the address (rfc822Name, as OpenSSL's `X509_check_email` reads it), has
/// extendedKeyUsage emailProtection, and chains to TrustAnchors for S/MIME signing
/// (`X509_verify_cert`, purpose smimesign). The path is OpenSSL's, never ours.
public enum IssuedCertificate {
    /// Checks the PEM the CA answered (the certificate, maybe with intermediates and root, in
    /// any order) and returns the chain to install: our certificate first, then the other
    /// certificates of the answer except self-signed ones. Throws with a clear reason.
    public static func check(answer pem: [UInt8], key: NewKey, address: String,
                             trustAnchors: TrustStore, now: Date = Date()) throws -> [UInt8] {
        let certs: [OpaquePointer]
        do { certs = try PEMReader.certificates(in: pem) } catch {
            throw SMIMEError(.invalidCertificate, "the CA's answer cannot be read: \(error)")
        }
        defer { certs.forEach { X509_free($0) } }
        guard !certs.isEmpty else { throw SMIMEError(.invalidCertificate, "the CA's answer holds no PEM certificate") }
        guard let leaf = certs.first(where: { EVP_PKEY_eq(X509_get0_pubkey($0), key.pkey) == 1 }) else {
            _ = OpenSSL.drainErrors()
            throw SMIMEError(.invalidCertificate,
                             "no certificate in the CA's answer holds our key (subject of the first: \(OpenSSL.oneLine(X509_get_subject_name(certs[0]))))")
        }
        let others = certs.filter { $0 != leaf }
        return try checkLeaf(leaf, others: others, address: address, trustAnchors: trustAnchors, now: now)
    }

    /// The same check on a certificate already matched to its key elsewhere (a CMP answer, whose
    /// key OpenSSL's client has compared already); `cert` and `others` stay the caller's.
    static func checkLeaf(_ leaf: OpaquePointer, others: [OpaquePointer], address: String,
                          trustAnchors: TrustStore, now: Date) throws -> [UInt8] {
        let subject = OpenSSL.oneLine(X509_get_subject_name(leaf))
        guard X509_check_email(leaf, address, address.utf8.count, 0) == 1 else {
            _ = OpenSSL.drainErrors()
            throw SMIMEError(.invalidCertificate, "the issued certificate (\(subject)) is not for \(address)")
        }
        let flags = X509_get_extension_flags(leaf)
        guard flags & UInt32(EXFLAG_XKUSAGE) != 0, X509_get_extended_key_usage(leaf) & UInt32(XKU_SMIME) != 0 else {
            throw SMIMEError(.invalidCertificate, "the issued certificate (\(subject)) has no extendedKeyUsage emailProtection")
        }
        guard let untrusted = smime_sk_X509_new_null() else { throw SMIMEError(.openSSL, "out of memory") }
        defer { smime_sk_X509_free(untrusted) }
        for other in others { _ = smime_sk_X509_push(untrusted, other) }
        guard let ctx = X509_STORE_CTX_new() else { throw SMIMEError(.openSSL, "out of memory") }
        defer { X509_STORE_CTX_free(ctx) }
        guard X509_STORE_CTX_init(ctx, trustAnchors.store, leaf, untrusted) == 1 else {
            throw SMIMEError(.openSSL, "cannot check the chain", openSSLErrors: OpenSSL.drainErrors())
        }
        _ = X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_SIGN)
        X509_STORE_CTX_set_time(ctx, 0, time_t(now.timeIntervalSince1970))
        if X509_verify_cert(ctx) != 1 {
            let reason = String(cString: X509_verify_cert_error_string(Int(X509_STORE_CTX_get_error(ctx))))
            _ = OpenSSL.drainErrors()
            throw SMIMEError(.invalidCertificate, "the issued certificate (\(subject)) does not chain to TrustAnchors: \(reason)")
        }
        var pem: [UInt8] = []
        for cert in [leaf] + others where cert == leaf || X509_check_issued(cert, cert) != X509_V_OK {
            pem += try certificatePEM(cert)
        }
        return pem
    }

    /// One certificate as PEM.
    static func certificatePEM(_ cert: OpaquePointer) throws -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { throw SMIMEError(.openSSL, "out of memory") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_X509(bio, cert) == 1 else {
            throw SMIMEError(.openSSL, "cannot write a certificate", openSSLErrors: OpenSSL.drainErrors())
        }
        return OpenSSL.contents(ofMemoryBIO: bio)
    }
}
