// SPDX-License-Identifier: Apache-2.0
import COpenSSL

/// Why an envelope could not be opened. The raw values are the `cause=` words of the log line,
/// the `X-SMIME-Decrypted` field and the metrics label.
public enum DecryptionFailureCause: String, Sendable, CaseIterable {
    /// No identity's certificate (current, expired or archived) is named by the envelope.
    case noKey = "no_key"
    /// The DER is not a well-formed EnvelopedData/AuthEnvelopedData, or the MIME around it is broken.
    case corrupt
    /// The content cipher is one the policy refuses (RC2, DES, 3DES) or OpenSSL does not have.
    case refusedCipher = "refused_cipher"
    /// AuthEnvelopedData whose authentication tag does not match (AES-GCM): tampered in transit.
    case integrity
    /// A named key was found but the key or content could not be decrypted (wrong key, tampered
    /// ciphertext, padding error).
    case decryptFailed = "decrypt_failed"
    /// The decrypted content is larger than the limit.
    case tooLarge = "too_large"
    /// More encrypted layers inside each other than the limit.
    case tooDeep = "too_deep"
    /// The key is on a PKCS#11 token that did not answer (temporary).
    case keyUnavailable = "key_unavailable"
}

/// An envelope that could not be opened, with the cause and a short reason for the log line
/// (never key material: OpenSSL's error-code texts only).
public struct DecryptionFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let cause: DecryptionFailureCause
    public let reason: String

    public init(_ cause: DecryptionFailureCause, _ reason: String) {
        self.cause = cause
        self.reason = reason
    }

    public var description: String { "\(cause.rawValue): \(reason)" }
}

/// What one opened envelope was.
public struct DecryptedEnvelope: Sendable {
    /// The decrypted content (a MIME entity: header fields, blank line, body), as encrypted.
    public let content: [UInt8]
    /// The identity whose key opened it, and that identity's certificate (issuer, serial).
    public let identityName: String
    public let certificateIssuer: String
    public let certificateSerialHex: String
    /// OpenSSL's short name: "AES-256-CBC", "id-aes256-GCM" (AuthEnvelopedData), ...
    public let cipher: String
    /// True for AuthEnvelopedData (the tag was checked).
    public let isAuthenticated: Bool
    /// The key-encryption algorithm of the RecipientInfo used: "rsaEncryption", "rsaesOaep",
    /// "dhSinglePass-stdDH-sha256kdf-scheme", ...
    public let keyAlgorithm: String
}

/// Opens CMS EnvelopedData and AuthEnvelopedData (RFC 5652 §6, RFC 5083) with OpenSSL's CMS API:
/// AES-CBC and AES-GCM content, RSA key transport (PKCS#1 v1.5 and OAEP) and ECDH key agreement
/// (RFC 5753). The key is the candidate identity whose certificate a RecipientInfo names (issuer
/// and serial, or subject key identifier). Safe to call concurrently: each call parses its own
/// CMS_ContentInfo; the identities are only read (a token key holds its own session lock).
public enum CMSDecryptor {
    /// Content ciphers refused unless `allowWeakCiphers`: RC2 (any key size), single DES and
    /// 3DES (RFC 8551 §2.7: MUST NOT / SHOULD- for new mail; 64-bit blocks, Sweet32).
    static let weakCipherNIDs: Set<Int32> = [NID_rc2_cbc, NID_rc2_40_cbc, NID_rc2_64_cbc, NID_des_cbc, NID_des_ede3_cbc,
                                             NID_des_ede_cbc, NID_desx_cbc]

    /// Whether `der` is a ContentInfo of EnvelopedData or AuthEnvelopedData (cheap: parses it).
    public static func isEnvelope(_ der: [UInt8]) -> Bool {
        (try? withContentInfo(der) { cms in try envelopeKind(cms) }) != nil
    }

    /// Decrypts `der` with the first candidate whose certificate the envelope names.
    ///
    /// - Parameters:
    ///   - candidates: the identities to try, in order (current ones first, then expired and
    ///     archived ones).
    ///   - allowWeakCiphers: RC2, DES and 3DES content is opened too (`DecryptionWeakCiphers accept`).
    ///   - maximumSize: a larger decrypted content is a `tooLarge` failure.
    public static func decrypt(_ der: [UInt8], candidates: [SigningIdentity], allowWeakCiphers: Bool = false,
                               maximumSize: Int) throws(DecryptionFailure) -> DecryptedEnvelope {
        ERR_clear_error()
        defer { _ = OpenSSL.drainErrors() }
        do {
            return try withContentInfo(der) { cms throws(DecryptionFailure) -> DecryptedEnvelope in
                let authenticated = try envelopeKind(cms)
                let nid = der.withUnsafeBufferPointer { smime_envelope_cipher_nid($0.baseAddress, der.count) }
                guard nid != NID_undef else { throw DecryptionFailure(.corrupt, "the content-encryption algorithm cannot be read") }
                let cipher = String(cString: OBJ_nid2sn(nid))
                if weakCipherNIDs.contains(nid), !allowWeakCiphers {
                    throw DecryptionFailure(.refusedCipher, "content cipher \(cipher) is refused")
                }
                guard let (identity, keyAlgorithm) = match(cms, candidates: candidates) else {
                    throw DecryptionFailure(.noKey, "no key for the \(smime_cms_recipient_count(cms)) recipient(s) of the envelope")
                }
                let content = try open(cms, identity: identity, authenticated: authenticated, maximumSize: maximumSize)
                return DecryptedEnvelope(content: content, identityName: identity.name, certificateIssuer: identity.issuer,
                                         certificateSerialHex: identity.serialHex, cipher: cipher,
                                         isAuthenticated: authenticated, keyAlgorithm: keyAlgorithm)
            }
        } catch let failure as DecryptionFailure {
            throw failure
        } catch {
            throw DecryptionFailure(.corrupt, "\(error)")
        }
    }

    /// The identities the envelope names: each RecipientInfo's issuer+serial or SKI compared
    /// with each candidate's certificate by OpenSSL.
    public static func namedIdentities(_ der: [UInt8], candidates: [SigningIdentity]) -> [SigningIdentity] {
        (try? withContentInfo(der) { cms -> [SigningIdentity] in
            candidates.filter { identity in
                (0..<smime_cms_recipient_count(cms)).contains { i in
                    smime_cms_recipient(cms, i).map { smime_cms_recipient_names($0, identity.certificate) == 1 } ?? false
                }
            }
        }) ?? []
    }

    /// The content an opaque SignedData carries (not verified: the verifier judges the
    /// signature), or nil when `der` is not SignedData or its content is detached.
    public static func signedContent(_ der: [UInt8]) -> [UInt8]? {
        defer { _ = OpenSSL.drainErrors() }
        return try? withContentInfo(der) { cms -> [UInt8]? in
            guard let content = smime_cms_signed_content(cms), let data = ASN1_STRING_get0_data(content) else { return nil }
            return Array(UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(content))))
        } ?? nil
    }

    // MARK: internals

    private static func withContentInfo<T>(_ der: [UInt8], _ body: (OpaquePointer) throws -> T) throws -> T {
        guard !der.isEmpty, der.count < Int(Int32.max) else { throw DecryptionFailure(.corrupt, "no envelope") }
        let cms = CMSParser.decode(der)
        guard let cms else { throw DecryptionFailure(.corrupt, "not a CMS structure") }
        defer { CMS_ContentInfo_free(cms) }
        return try body(cms)
    }

    /// True for AuthEnvelopedData, false for EnvelopedData; throws for anything else.
    private static func envelopeKind(_ cms: OpaquePointer) throws(DecryptionFailure) -> Bool {
        switch OBJ_obj2nid(CMS_get0_type(cms)) {
        case NID_pkcs7_enveloped: return false
        case NID_id_smime_ct_authEnvelopedData: return true
        default: throw DecryptionFailure(.corrupt, "not EnvelopedData or AuthEnvelopedData")
        }
    }

    private static func match(_ cms: OpaquePointer, candidates: [SigningIdentity]) -> (SigningIdentity, String)? {
        for identity in candidates {
            for i in 0..<smime_cms_recipient_count(cms) {
                guard let info = smime_cms_recipient(cms, i), smime_cms_recipient_names(info, identity.certificate) == 1 else { continue }
                let nid = smime_cms_recipient_key_algorithm_nid(info)
                return (identity, nid == NID_undef ? "unknown" : String(cString: OBJ_nid2sn(nid)))
            }
        }
        return nil
    }

    private static func open(_ cms: OpaquePointer, identity: SigningIdentity, authenticated: Bool,
                             maximumSize: Int) throws(DecryptionFailure) -> [UInt8] {
        guard let out = BIO_new(BIO_s_mem()) else { throw DecryptionFailure(.decryptFailed, "cannot create a memory BIO") }
        defer { BIO_free(out) }
        let decrypted: Int32
        do {
            decrypted = try identity.withPrivateKey { key in
                // With the certificate, OpenSSL uses only the RecipientInfo that names it.
                CMS_decrypt(cms, key, identity.certificate, nil, out, UInt32(CMS_BINARY))
            }
        } catch {
            throw DecryptionFailure(.keyUnavailable, "the key of \(identity.name) is not available: \(error)")
        }
        guard decrypted == 1 else {
            let errors = OpenSSL.drainErrors()
            let detail = errors.isEmpty ? "" : " (OpenSSL: " + errors.prefix(3).joined(separator: "; ") + ")"
            if authenticated {
                throw DecryptionFailure(.integrity, "AuthEnvelopedData did not authenticate (tag mismatch or wrong key)\(detail)")
            }
            throw DecryptionFailure(.decryptFailed, "cannot decrypt with \(identity.name)\(detail)")
        }
        let content = OpenSSL.contents(ofMemoryBIO: out)
        if content.count > maximumSize {
            throw DecryptionFailure(.tooLarge, "decrypted content of \(content.count) bytes is over the limit of \(maximumSize)")
        }
        return content
    }
}
