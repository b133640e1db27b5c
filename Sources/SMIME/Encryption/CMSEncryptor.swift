// SPDX-License-Identifier: Apache-2.0
import COpenSSL

/// The content-encryption algorithm of an encrypted message.
public enum ContentCipher: String, Sendable, CaseIterable {
    /// AES-256-CBC in EnvelopedData: what every S/MIME client decrypts (the default, for reach).
    case aes256CBC = "aes-256-cbc"
    /// AES-256-GCM in AuthEnvelopedData (RFC 5083, RFC 8551 §2.7): only for recipients whose
    /// SMIMECapabilities announce it (NSS 3.87 and gpgsm 2.2 cannot decrypt it).
    case aes256GCM = "aes-256-gcm"

    /// Whether the result is AuthEnvelopedData (smime-type=authEnveloped-data).
    public var isAuthenticated: Bool { self == .aes256GCM }

    var evpCipher: OpaquePointer? {
        switch self {
        case .aes256CBC: return EVP_aes_256_cbc()
        case .aes256GCM: return EVP_aes_256_gcm()
        }
    }
}

/// How the content-encryption key is encrypted to an RSA recipient.
public enum RSAKeyTransport: String, Sendable, CaseIterable {
    /// RSAES-PKCS1-v1_5: what every client decrypts (the default).
    case pkcs1
    /// RSAES-OAEP (RFC 8017, RFC 3560) with OpenSSL's default parameters (SHA-1, MGF1-SHA-1).
    case oaep
}

/// Makes CMS EnvelopedData and AuthEnvelopedData (RFC 5652 §6, RFC 5083) with OpenSSL's CMS API.
///
/// Signing first, then encrypting is the caller's job: this encrypts the bytes it is given.
/// RSA recipients get a KeyTransRecipientInfo, EC recipients a KeyAgreeRecipientInfo (ECDH,
/// RFC 5753, OpenSSL's default KDF and key wrap). Safe to call concurrently: each call builds its
/// own CMS_ContentInfo and only takes references to the recipients' certificates.
public enum CMSEncryptor {
    /// Encrypts `content` to every certificate in `recipients` and returns the DER ContentInfo.
    ///
    /// - Parameters:
    ///   - content: the MIME entity to encrypt (header fields, blank line, body; CRLF), used as is.
    ///   - recipients: one RecipientInfo each (an archive certificate is just one more); at least one.
    ///   - cipher: AES-256-CBC (EnvelopedData) or AES-256-GCM (AuthEnvelopedData).
    ///   - rsaKeyTransport: PKCS#1 v1.5 or OAEP for the RSA recipients.
    /// - Throws: `SMIMEError` (`.encryptionFailed`) with OpenSSL's error text, e.g. for a
    ///   recipient whose key cannot encrypt (Ed25519).
    public static func encrypt(content: [UInt8], recipients: [RecipientCertificate],
                               cipher: ContentCipher = .aes256CBC,
                               rsaKeyTransport: RSAKeyTransport = .pkcs1) throws -> [UInt8] {
        ERR_clear_error()
        guard !recipients.isEmpty else { throw SMIMEError(.encryptionFailed, "no recipient to encrypt to") }
        if let unusable = recipients.first(where: { $0.keyKind == .other }) {
            throw SMIMEError(.encryptionFailed, "cannot encrypt to a \(unusable.info.keyDescription) key "
                             + "(\(unusable.info.subject)): only RSA and EC keys")
        }
        guard let evp = cipher.evpCipher else { throw failure("cipher \(cipher.rawValue) is not available") }
        // CMS_BINARY: the entity is canonical already. CMS_PARTIAL: add the recipients ourselves,
        // to set the RSA padding per RecipientInfo. With an AEAD cipher OpenSSL 3 makes
        // AuthEnvelopedData (CMS_AuthEnvelopedData_create) instead of EnvelopedData.
        let flags = UInt32(CMS_BINARY | CMS_PARTIAL)
        guard let cms = CMS_encrypt(nil, nil, evp, flags) else {
            throw failure("cannot create the \(cipher.isAuthenticated ? "AuthEnvelopedData" : "EnvelopedData")")
        }
        defer { CMS_ContentInfo_free(cms) }
        for recipient in recipients {
            let oaep = recipient.keyKind == .rsa && rsaKeyTransport == .oaep
            // CMS_KEY_PARAM: keep the recipient's EVP_PKEY_CTX open so the padding can be set.
            let recipientFlags = oaep ? flags | UInt32(CMS_KEY_PARAM) : flags
            guard let info = CMS_add1_recipient_cert(cms, recipient.x509, recipientFlags) else {
                throw failure("cannot add the recipient \(recipient.info.subject)")
            }
            if oaep {
                guard let context = CMS_RecipientInfo_get0_pkey_ctx(info),
                      EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_OAEP_PADDING) > 0
                else { throw failure("cannot use RSA-OAEP for \(recipient.info.subject)") }
            }
        }
        try OpenSSL.withMemoryBIO(content) { bio in
            guard CMS_final(cms, bio, nil, flags) == 1 else { throw failure("cannot encrypt the content") }
        }
        let length = i2d_CMS_ContentInfo(cms, nil)
        guard length > 0 else { throw failure("cannot encode the encrypted message") }
        var der = [UInt8](repeating: 0, count: Int(length))
        let written = der.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor = buffer.baseAddress
            return i2d_CMS_ContentInfo(cms, &cursor)
        }
        guard written == length else { throw failure("cannot encode the encrypted message") }
        return der
    }

    private static func failure(_ message: String) -> SMIMEError {
        SMIMEError(.encryptionFailed, message, openSSLErrors: OpenSSL.drainErrors())
    }
}
