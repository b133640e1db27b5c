// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// Facts read from one X.509 certificate by OpenSSL: names, serial, validity, e-mail addresses.
///
/// Used for signing identities now and meant for the verifier later (the signer's
/// certificate from a SignedData).
public struct CertificateInfo: Sendable, Equatable {
    /// Subject DN, RFC 2253 one-line form ("CN=alice@example.com,O=Example").
    public let subject: String
    /// Issuer DN, RFC 2253 one-line form.
    public let issuer: String
    /// Serial number in upper-case hexadecimal.
    public let serialHex: String
    /// Start of the validity period.
    public let notBefore: Date
    /// End of the validity period.
    public let notAfter: Date
    /// Lower-cased e-mail addresses: subjectAltName rfc822Name and SmtpUTF8Mailbox
    /// entries, or, only when the SAN has none, the subject's emailAddress attributes.
    public let addresses: [String]
    /// Whether basicConstraints marks this as a CA certificate.
    public let isCA: Bool
    /// Whether the certificate is self-issued and self-signed (a root).
    public let isSelfSigned: Bool
    /// The public key, e.g. "RSA-2048", "EC-P-256", "Ed25519".
    public let keyDescription: String

    /// Reads the facts from an OpenSSL certificate. May fill OpenSSL's per-certificate
    /// extension cache, so call it before the certificate is shared between threads.
    init(x509 cert: OpaquePointer) throws {
        guard let notBefore = OpenSSL.date(X509_get0_notBefore(cert)),
              let notAfter = OpenSSL.date(X509_get0_notAfter(cert))
        else {
            throw SMIMEError(.invalidCertificate, "certificate validity dates cannot be read",
                             openSSLErrors: OpenSSL.drainErrors())
        }
        subject = OpenSSL.oneLine(X509_get_subject_name(cert))
        issuer = OpenSSL.oneLine(X509_get_issuer_name(cert))
        serialHex = OpenSSL.hex(X509_get0_serialNumber(cert))
        self.notBefore = notBefore
        self.notAfter = notAfter
        addresses = Self.addresses(of: cert)
        isCA = X509_check_ca(cert) != 0
        isSelfSigned = X509_self_signed(cert, 0) == 1
        keyDescription = Self.keyDescription(X509_get0_pubkey(cert))
        _ = OpenSSL.drainErrors()
    }

    /// Parses one DER-encoded certificate.
    public init(der: [UInt8]) throws {
        let cert: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509(nil, &cursor, buffer.count)
        }
        guard let cert else {
            throw SMIMEError(.invalidCertificate, "not a DER certificate", openSSLErrors: OpenSSL.drainErrors())
        }
        defer { X509_free(cert) }
        try self.init(x509: cert)
    }

    /// Parses every certificate in PEM text (other PEM blocks are skipped).
    public static func certificates(pem: [UInt8]) throws -> [CertificateInfo] {
        let certs = try PEMReader.certificates(in: pem)
        defer { certs.forEach { X509_free($0) } }
        return try certs.map { try CertificateInfo(x509: $0) }
    }

    /// SAN rfc822Name/SmtpUTF8Mailbox entries, else subject emailAddress; lower-cased, unique.
    static func addresses(of cert: OpaquePointer) -> [String] {
        var found: [String] = []
        func add(_ value: String?) {
            guard let value else { return }
            let address = value.trimmingCharacters(in: .whitespaces).lowercased()
            if !address.isEmpty, !found.contains(address) { found.append(address) }
        }
        if let raw = X509_get_ext_d2i(cert, NID_subject_alt_name, nil, nil) {
            let names = OpaquePointer(raw)
            defer { GENERAL_NAMES_free(names) }
            for index in 0..<max(0, smime_sk_GENERAL_NAME_num(names)) {
                let name = smime_sk_GENERAL_NAME_value(names, index)
                add(OpenSSL.string(smime_general_name_rfc822(name)))
                add(OpenSSL.string(smime_general_name_smtputf8(name)))
            }
        }
        if found.isEmpty, let subject = X509_get_subject_name(cert) {
            var position: Int32 = -1
            // Bounded by the number of entries in the name.
            while true {
                position = X509_NAME_get_index_by_NID(subject, NID_pkcs9_emailAddress, position)
                if position < 0 { break }
                add(OpenSSL.string(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, position))))
            }
        }
        _ = OpenSSL.drainErrors()
        return found
    }

    /// "RSA-2048", "RSA-PSS-2048", "EC-P-256", "Ed25519", "Ed448", or OpenSSL's short name.
    static func keyDescription(_ key: OpaquePointer?) -> String {
        guard let key else { return "unknown" }
        let id = EVP_PKEY_get_base_id(key)
        switch id {
        case EVP_PKEY_RSA:
            return "RSA-\(EVP_PKEY_get_bits(key))"
        case EVP_PKEY_RSA_PSS:
            return "RSA-PSS-\(EVP_PKEY_get_bits(key))"
        case EVP_PKEY_EC:
            var buffer = [CChar](repeating: 0, count: 80)
            var length = 0
            guard EVP_PKEY_get_group_name(key, &buffer, buffer.count, &length) == 1 else {
                _ = OpenSSL.drainErrors()
                return "EC-\(EVP_PKEY_get_bits(key))"
            }
            let group = String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let nist = EC_curve_nid2nist(OBJ_sn2nid(group)) {
                return "EC-" + String(cString: nist)
            }
            return "EC-" + group
        case EVP_PKEY_ED25519:
            return "Ed25519"
        case EVP_PKEY_ED448:
            return "Ed448"
        default:
            if let name = OBJ_nid2sn(id) { return String(cString: name) }
            return "unknown"
        }
    }
}
