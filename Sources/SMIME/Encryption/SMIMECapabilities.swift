// SPDX-License-Identifier: Apache-2.0
import COpenSSL

/// The algorithms a correspondent's client says it can decrypt with: the SMIMECapabilities
/// signed attribute (RFC 8551 §2.5.2), as object identifiers in the sender's preference order.
public struct SMIMECapabilities: Sendable, Equatable, Codable {
    /// Dotted object identifiers, in the order the attribute lists them.
    public var algorithms: [String]

    public static let aes256CBC = "2.16.840.1.101.3.4.1.42"
    public static let aes128CBC = "2.16.840.1.101.3.4.1.2"
    public static let aes256GCM = "2.16.840.1.101.3.4.1.46"
    public static let aes128GCM = "2.16.840.1.101.3.4.1.6"
    public static let rsaesOAEP = "1.2.840.113549.1.1.7"

    public init(algorithms: [String]) { self.algorithms = algorithms }

    /// Parses the DER of the attribute's value (a SEQUENCE OF SMIMECapability) with OpenSSL
    /// (`d2i_X509_ALGORS`).
    public init(attributeValueDER der: [UInt8]) throws {
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509_ALGORS(nil, &cursor, buffer.count)
        }
        guard let stack = parsed else {
            throw SMIMEError(.invalidCertificate, "the SMIMECapabilities attribute cannot be parsed",
                             openSSLErrors: OpenSSL.drainErrors())
        }
        defer { smime_sk_X509_ALGOR_pop_free(stack) }
        var found: [String] = []
        // Bounded: a real client lists a dozen; more is not worth reading.
        for index in 0..<min(64, max(0, Int(smime_sk_X509_ALGOR_num(stack)))) {
            guard let algorithm = smime_sk_X509_ALGOR_value(stack, Int32(index)) else { continue }
            var object: OpaquePointer?
            X509_ALGOR_get0(&object, nil, nil, algorithm)
            if let oid = Self.dotted(object) { found.append(oid) }
        }
        self.algorithms = found
    }

    /// The attribute of one SignerInfo (`CMS_SignerInfo*`), or nil when it has none.
    /// Throws when it is present more than once or with more than one value (RFC 8551 §2.5.2).
    static func of(signerInfo info: OpaquePointer) throws -> SMIMECapabilities? {
        let object = OBJ_nid2obj(NID_SMIMECapabilities)
        let position = CMS_signed_get_attr_by_OBJ(info, object, -1)
        guard position >= 0 else { return nil }
        // -3: exactly one attribute with exactly one value, else NULL.
        guard let raw = CMS_signed_get0_data_by_OBJ(info, object, -3, V_ASN1_SEQUENCE) else {
            _ = OpenSSL.drainErrors()
            throw SMIMEError(.invalidCertificate, "SMIMECapabilities is not a single attribute with a single value")
        }
        let value = raw.assumingMemoryBound(to: ASN1_STRING.self)
        let length = Int(ASN1_STRING_length(value))
        guard let data = ASN1_STRING_get0_data(value), length > 0 else { return SMIMECapabilities(algorithms: []) }
        return try SMIMECapabilities(attributeValueDER: Array(UnsafeBufferPointer(start: data, count: length)))
    }

    static func dotted(_ object: OpaquePointer?) -> String? {
        guard let object else { return nil }
        var buffer = [CChar](repeating: 0, count: 128)
        let length = OBJ_obj2txt(&buffer, Int32(buffer.count), object, 1)
        guard length > 0, Int(length) < buffer.count else { return nil }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether the client announces AES-256-GCM (then AuthEnvelopedData may be sent).
    public var announcesAES256GCM: Bool { algorithms.contains(Self.aes256GCM) }
    /// Whether the client announces RSAES-OAEP key transport.
    public var announcesRSAOAEP: Bool { algorithms.contains(Self.rsaesOAEP) }

    /// The content cipher for a message to several recipients: AES-256-GCM only when every one
    /// of them announced it (a recipient without known capabilities counts as not announcing),
    /// else AES-256-CBC, which every client decrypts.
    public static func cipher(for recipients: [SMIMECapabilities?]) -> ContentCipher {
        guard !recipients.isEmpty else { return .aes256CBC }
        return recipients.allSatisfy({ $0?.announcesAES256GCM == true }) ? .aes256GCM : .aes256CBC
    }
}
