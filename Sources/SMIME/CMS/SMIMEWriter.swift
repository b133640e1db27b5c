// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME

/// Writes the S/MIME MIME structures around a signature (RFC 8551 §3.5, RFC 1847).
///
/// Output uses CRLF throughout. The caller makes the returned Content-Type the message's new
/// top-level Content-Type field (folding it if needed) and the returned body its new body.
public enum SMIMEWriter {
    /// The prefix of generated boundaries; "=_" cannot occur in quoted-printable or base64
    /// text, and the random tail is checked against the entity anyway.
    public static let boundaryPrefix = "----=_smime_"

    /// The preamble shown by non-MIME readers.
    public static let preamble = "This is an S/MIME signed message"

    /// Wraps a signed entity and its detached signature in multipart/signed.
    ///
    /// The entity bytes appear verbatim as part 1; the CRLF before each delimiter belongs to
    /// the delimiter (RFC 2046 §5.1.1), so the signed bytes are exactly `entity`.
    ///
    /// - Parameters:
    ///   - entity: the exact bytes that were signed (MIME header fields, blank line, body).
    ///   - signature: DER SignedData without eContent, from `CMSSigner.sign(..., detached: true)`.
    ///   - digest: the digest used, for `micalg`.
    ///   - boundary: a fixed boundary (tests); nil makes a random one.
    /// - Throws: `SMIMEError.Kind.invalidBoundary` when a given boundary is not a valid RFC 2046
    ///   boundary or occurs in the entity.
    public static func multipartSigned(entity: [UInt8], signature: [UInt8], digest: DigestAlgorithm,
                                       boundary: String? = nil) throws -> (contentType: String, body: [UInt8]) {
        let chosen: String
        if let boundary {
            guard isValidBoundary(boundary) else {
                throw SMIMEError(.invalidBoundary, "boundary \"\(boundary)\" is not a valid MIME boundary")
            }
            guard !ByteSearch.contains(entity, Array(boundary.utf8)) else {
                throw SMIMEError(.invalidBoundary, "boundary \"\(boundary)\" occurs in the signed entity")
            }
            chosen = boundary
        } else {
            chosen = makeBoundary(avoiding: entity)
        }
        let contentType = "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=\(digest.micalg); boundary=\"\(chosen)\""
        return (contentType, wrap(entity, signature: signature, boundary: chosen))
    }

    /// Like `multipartSigned(entity:signature:digest:boundary:)` with a random boundary, but builds
    /// the body in the storage of `entity` when the caller passes its only reference and it has
    /// room (`SignableEntity` reserves it): a large message is then not copied once more.
    public static func multipartSigned(consuming entity: consuming [UInt8], signature: [UInt8],
                                       digest: DigestAlgorithm) -> (contentType: String, body: [UInt8]) {
        let chosen = makeBoundary(avoiding: entity)
        let contentType = "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=\(digest.micalg); boundary=\"\(chosen)\""
        return (contentType, wrap(entity, signature: signature, boundary: chosen))
    }

    /// Part 1 (`entity`, verbatim), the signature part and the delimiters around them.
    private static func wrap(_ entity: consuming [UInt8], signature: [UInt8], boundary: String) -> [UInt8] {
        let frame = frame(boundary: boundary, signature: signature)
        var body = entity
        body.reserveCapacity(body.count + frame.head.count + frame.tail.count)
        body.insert(contentsOf: frame.head, at: 0)
        body.append(contentsOf: frame.tail)
        return body
    }

    /// The multipart/signed body around an entity that is written separately (a large body
    /// streamed from a file): the body is `head`, the signed entity's bytes, `tail`.
    /// `boundary` must not occur in the entity (the caller checks, see `randomBoundary()`).
    public static func multipartSignedFrame(boundary: String, signature: [UInt8], digest: DigestAlgorithm)
        -> (contentType: String, head: [UInt8], tail: [UInt8]) {
        let contentType = "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=\(digest.micalg); boundary=\"\(boundary)\""
        let parts = frame(boundary: boundary, signature: signature)
        return (contentType, parts.head, parts.tail)
    }

    /// A random boundary (`boundaryPrefix` and 32 random characters), not yet checked against
    /// any entity.
    public static func randomBoundary() -> String {
        // Random bytes in a few 64-bit draws (each draw is a getrandom call, one per character
        // was measurable); bytes of 248 and above are dropped so that `% 62` stays uniform.
        var generator = SystemRandomNumberGenerator()
        var out = Array(boundaryPrefix.utf8)
        out.reserveCapacity(out.count + 32)
        var chosen = 0
        while chosen < 32 {
            var draw = generator.next()
            for _ in 0..<8 where chosen < 32 {
                let byte = UInt8(truncatingIfNeeded: draw)
                draw >>= 8
                guard byte < 248 else { continue }
                out.append(boundaryAlphabet[Int(byte % 62)])
                chosen += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let boundaryAlphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    private static func frame(boundary: String, signature: [UInt8]) -> (head: [UInt8], tail: [UInt8]) {
        let delimiter = "--" + boundary
        let head = Array((preamble + "\r\n\r\n" + delimiter + "\r\n").utf8)
        var tail = Array(("\r\n" + delimiter + "\r\n"
            + "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
            + "Content-Transfer-Encoding: base64\r\n"
            + "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n"
            + "\r\n").utf8)
        tail += base64Lines(signature)
        tail += Array(("\r\n" + delimiter + "--\r\n").utf8)
        return (head, tail)
    }

    /// The header values and body of an opaque signed message (application/pkcs7-mime
    /// signed-data) carrying `signedData` from `CMSSigner.sign(..., detached: false)`.
    public static func opaque(signedData: [UInt8]) -> (contentType: String, contentTransferEncoding: String,
                                                        contentDisposition: String, body: [UInt8]) {
        var body = base64Lines(signedData)
        body += [0x0D, 0x0A]
        return ("application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"", "base64",
                "attachment; filename=\"smime.p7m\"", body)
    }

    /// Base64 in lines of 76 characters separated by CRLF, without a final line break.
    static func base64Lines(_ bytes: [UInt8]) -> [UInt8] {
        Base64Lines.encode(bytes)
    }

    /// A random boundary that does not occur in `entity`.
    static func makeBoundary(avoiding entity: [UInt8]) -> String {
        while true {
            // 32 characters of 62: a collision is practically impossible, but check anyway.
            let candidate = randomBoundary()
            if !ByteSearch.contains(entity, Array(candidate.utf8)) { return candidate }
        }
    }

    /// RFC 2046 §5.1.1: 1-70 bchars, not ending in a space.
    static func isValidBoundary(_ boundary: String) -> Bool {
        let bchars = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ".utf8)
        let bytes = Array(boundary.utf8)
        return (1...70).contains(bytes.count) && bytes.allSatisfy(bchars.contains) && bytes.last != 0x20
    }
}
