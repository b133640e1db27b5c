// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// Parses a DER ContentInfo with `d2i_CMS_ContentInfo`, decoding each distinct certificate a
/// SignedData carries only once per process.
///
/// Why: OpenSSL 3.0 decodes the public key of every certificate inside `d2i_CMS_ContentInfo`
/// through the OSSL_DECODER framework, which builds a decoder chain per key (openssl/openssl#19119;
/// later releases cache it). Measured with callgrind, that was over half the instructions of
/// verifying a 2 KB message, although nearly every inbound signature carries the same signer and
/// intermediate certificates as the last one from that sender.
///
/// How, without parsing anything ourselves: OpenSSL's own TLV reader (`ASN1_get_object`) finds
/// the `certificates [0]` field of the SignedData; the ContentInfo is rebuilt without it (the
/// other fields byte for byte, new headers written by `ASN1_put_object`) and parsed by
/// `d2i_CMS_ContentInfo`; the certificates are taken from a cache keyed by their exact DER
/// (decoded by `d2i_X509` on a miss) and put back in order with `CMS_add1_cert`. Certificates
/// are not covered by the signature, and every check `CMS_verify` and `X509_verify_cert` make
/// runs on the result as before. Anything other than plain DER of the usual shape (BER with
/// indefinite lengths, other certificate choices, a certificate carried twice, trailing bytes,
/// more than `maxCertificates`) is parsed the ordinary way, so the outcome never differs.
public enum CMSParser {
    /// Certificates larger than this are decoded but not kept (bounds the cache's memory).
    static let largestCachedCertificate = 16 << 10
    /// At most this many certificates are kept; the cache is emptied when it is full.
    static let cacheCapacity = 1_024
    /// More certificates than this in one SignedData: parsed the ordinary way (the verifier
    /// then refuses it with its own limit).
    static let maxCertificates = 64

    /// A parsed ContentInfo the caller owns (`CMS_ContentInfo_free`), or nil when `der` is not one.
    public static func parse(_ der: [UInt8]) -> OpaquePointer? {
        if let fast = parseWithCachedCertificates(der) { return fast }
        ERR_clear_error()
        return decode(der)
    }

    /// `d2i_CMS_ContentInfo` over `der` as it stands (every certificate decoded): an owned
    /// ContentInfo, or nil.
    public static func decode(_ der: [UInt8]) -> OpaquePointer? {
        der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_CMS_ContentInfo(nil, &cursor, buffer.count)
        }
    }

    /// The number of certificates in the cache (for tests and the statistics).
    public static var cachedCertificateCount: Int { cache.count }

    // MARK: the split

    /// One TLV inside a DER buffer: where it starts, where its contents start, where it ends.
    struct Element {
        let start: Int
        let contentStart: Int
        let end: Int
        let tag: Int32
        let tagClass: Int32
        let constructed: Bool
    }

    /// The TLV at `offset` (definite length, within `limit`) read by `ASN1_get_object`; nil for
    /// an error, an indefinite length or one that runs past `limit`.
    static func element(in buffer: UnsafeBufferPointer<UInt8>, at offset: Int, limit: Int) -> Element? {
        guard let base = buffer.baseAddress, offset < limit, limit <= buffer.count else { return nil }
        var cursor: UnsafePointer<UInt8>? = base + offset
        var length = 0
        var tag: Int32 = 0
        var tagClass: Int32 = 0
        let flags = ASN1_get_object(&cursor, &length, &tag, &tagClass, limit - offset)
        guard flags & 0x80 == 0, flags & 0x01 == 0, let cursor, length >= 0 else { return nil }
        let contentStart = cursor - base
        guard contentStart <= limit, length <= limit - contentStart else { return nil }
        return Element(start: offset, contentStart: contentStart, end: contentStart + length, tag: tag,
                       tagClass: tagClass, constructed: flags & 0x20 != 0)
    }

    /// The elements directly inside `outer`, in order; nil when one does not parse.
    static func children(of outer: Element, in buffer: UnsafeBufferPointer<UInt8>) -> [Element]? {
        var out: [Element] = []
        var offset = outer.contentStart
        while offset < outer.end {
            guard let child = element(in: buffer, at: offset, limit: outer.end) else { return nil }
            out.append(child)
            offset = child.end
        }
        return out
    }

    /// id-signedData, 1.2.840.113549.1.7.2, as DER.
    static let signedDataOID: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02]

    /// The ContentInfo without its certificates, and the certificates' DER; nil when the input
    /// is not a DER SignedData of the usual shape with at least one certificate.
    static func split(_ der: [UInt8]) -> (stripped: [UInt8], certificates: [ArraySlice<UInt8>])? {
        der.withUnsafeBufferPointer { buffer -> (stripped: [UInt8], certificates: [ArraySlice<UInt8>])? in
            let universal = Int32(V_ASN1_UNIVERSAL), context = Int32(V_ASN1_CONTEXT_SPECIFIC)
            guard let info = element(in: buffer, at: 0, limit: buffer.count), info.end == buffer.count,
                  info.constructed, info.tag == V_ASN1_SEQUENCE, info.tagClass == universal,
                  let infoParts = children(of: info, in: buffer), infoParts.count == 2,
                  Array(der[infoParts[0].start..<infoParts[0].end]) == signedDataOID,
                  infoParts[1].constructed, infoParts[1].tag == 0, infoParts[1].tagClass == context,
                  let inner = children(of: infoParts[1], in: buffer), inner.count == 1,
                  inner[0].constructed, inner[0].tag == V_ASN1_SEQUENCE, inner[0].tagClass == universal,
                  let fields = children(of: inner[0], in: buffer)
            else { return nil }
            let certificateFields = fields.enumerated().filter { $0.element.tagClass == context && $0.element.tag == 0 }
            guard certificateFields.count == 1, let (position, field) = certificateFields.first, field.constructed,
                  let certificates = children(of: field, in: buffer), !certificates.isEmpty,
                  certificates.count <= maxCertificates,
                  certificates.allSatisfy({ $0.constructed && $0.tag == V_ASN1_SEQUENCE && $0.tagClass == universal })
            else { return nil }

            var body: [UInt8] = []
            body.reserveCapacity(der.count)
            for (index, f) in fields.enumerated() where index != position { body += der[f.start..<f.end] }
            guard let signedData = wrap(body, tag: V_ASN1_SEQUENCE, tagClass: universal),
                  let explicit = wrap(signedData, tag: 0, tagClass: context),
                  let stripped = wrap(Array(der[infoParts[0].start..<infoParts[0].end]) + explicit,
                                      tag: V_ASN1_SEQUENCE, tagClass: universal)
            else { return nil }
            return (stripped, certificates.map { der[$0.start..<$0.end] })
        }
    }

    /// `contents` behind a constructed header (definite length) written by `ASN1_put_object`.
    static func wrap(_ contents: [UInt8], tag: Int32, tagClass: Int32) -> [UInt8]? {
        guard contents.count < Int(Int32.max) - 16 else { return nil }
        let total = Int(ASN1_object_size(1, Int32(contents.count), tag))
        guard total > contents.count else { return nil }
        var out = [UInt8](repeating: 0, count: total)
        out.withUnsafeMutableBufferPointer { buffer in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            ASN1_put_object(&cursor, 1, Int32(contents.count), tag, tagClass)
        }
        out.replaceSubrange((total - contents.count)..<total, with: contents)
        return out
    }

    // MARK: the parse

    static func parseWithCachedCertificates(_ der: [UInt8]) -> OpaquePointer? {
        guard let (stripped, certificateDER) = split(der) else { return nil }
        var certificates: [CachedCertificate] = []
        for item in certificateDER {
            guard let certificate = cache.certificate(for: item) else { ERR_clear_error(); return nil }
            certificates.append(certificate)
        }
        guard let cms = decode(stripped) else { ERR_clear_error(); return nil }
        for certificate in certificates where CMS_add1_cert(cms, certificate.x509) != 1 {
            // A certificate carried twice (CMS_add0_cert refuses a duplicate): the ordinary way.
            CMS_ContentInfo_free(cms)
            ERR_clear_error()
            return nil
        }
        return cms
    }

    static let cache = CertificateCache()
}

/// A decoded certificate shared by the messages that carry it (X509 is reference counted and
/// safe to use from several threads; `CMS_add1_cert` takes its own reference).
final class CachedCertificate: @unchecked Sendable {
    let x509: OpaquePointer
    private let infoLock = NSLock()
    private var info: CertificateInfo?

    init(_ x509: OpaquePointer) { self.x509 = x509 }
    deinit { X509_free(x509) }

    /// The certificate's facts, read once (printing its names was 75,000 instructions per
    /// verified message); nil when they cannot be read.
    var certificateInfo: CertificateInfo? {
        infoLock.withLock {
            if let info { return info }
            info = try? CertificateInfo(x509: x509)
            return info
        }
    }
}

/// A certificate's exact DER as a dictionary key, hashed as one block of bytes.
///
/// Why: `Array<UInt8>`'s own `hash(into:)` feeds the hasher one element at a time; for a
/// 1 KB certificate that was 40,000 instructions per lookup, two lookups per verified message
/// (callgrind). Equality still compares every byte.
struct CertificateDER: Hashable {
    let bytes: ArraySlice<UInt8>

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    static func == (lhs: CertificateDER, rhs: CertificateDER) -> Bool {
        guard lhs.bytes.count == rhs.bytes.count else { return false }
        return lhs.bytes.withUnsafeBytes { l in
            rhs.bytes.withUnsafeBytes { r in
                l.count == 0 || memcmp(l.baseAddress!, r.baseAddress!, l.count) == 0
            }
        }
    }
}

/// Certificates by their exact DER, bounded in count and size.
final class CertificateCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [CertificateDER: CachedCertificate] = [:]
    /// The same entries by their X509 object. A pointer found here is alive (the entry holds a
    /// reference), so it cannot be a freed and reused address.
    private var byObject: [OpaquePointer: CachedCertificate] = [:]

    var count: Int { lock.withLock { entries.count } }

    /// The cache's entry for this very X509 object (as `CMS_get0_signers` returns it from a
    /// SignedData parsed with cached certificates); nil for any other certificate.
    func entry(for x509: OpaquePointer) -> CachedCertificate? {
        lock.withLock { byObject[x509] }
    }

    /// The decoded certificate for `der`; nil when `d2i_X509` refuses it or leaves bytes over.
    func certificate(for der: ArraySlice<UInt8>) -> CachedCertificate? {
        if let hit = lock.withLock({ entries[CertificateDER(bytes: der)] }) { return hit }
        let decoded: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return nil }
            var cursor: UnsafePointer<UInt8>? = base
            guard let x509 = d2i_X509(nil, &cursor, buffer.count) else { return nil }
            guard cursor == base + buffer.count else { X509_free(x509); return nil }
            return x509
        }
        guard let decoded else { return nil }
        let certificate = CachedCertificate(decoded)
        guard der.count <= CMSParser.largestCachedCertificate else { return certificate }
        // A copy, so the key does not keep the whole message's DER alive.
        let key = CertificateDER(bytes: ArraySlice(Array(der)))
        return lock.withLock {
            // Another thread decoded the same certificate meanwhile: share its object.
            if let existing = entries[key] { return existing }
            if entries.count >= CMSParser.cacheCapacity {
                entries.removeAll(keepingCapacity: true)
                byObject.removeAll(keepingCapacity: true)
            }
            entries[key] = certificate
            byObject[certificate.x509] = certificate
            return certificate
        }
    }
}
