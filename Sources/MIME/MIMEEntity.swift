// SPDX-License-Identifier: Apache-2.0
/// Something odd about an entity that the parser tolerated.
public enum MIMEDefect: Sendable, Equatable {
    /// The Content-Type value had no valid `type/subtype`; the default was used.
    case invalidContentType
    /// A multipart without a usable `boundary` parameter: parsed as a leaf.
    case missingBoundary
    /// The boundary never occurs in the body: parsed as a leaf.
    case boundaryNotFound
    /// The close-delimiter `--boundary--` is missing; the last part runs to the end of the body.
    case missingCloseDelimiter
    /// The header ended at a line that is neither a field nor blank (no blank line before the body).
    case missingBlankLine
    /// A Content-Transfer-Encoding other than 7bit/8bit/binary/quoted-printable/base64.
    case unknownTransferEncoding(String)
    /// A `message/rfc822` whose transfer encoding is not 7bit/8bit/binary: kept as a leaf.
    case encodedEncapsulatedMessage
}

/// One MIME entity of a parsed message, with the exact byte ranges it came from.
///
/// All ranges index `buffer`, the body buffer given to `MIMEParser.parse` (shared, not copied, by
/// every entity of the tree). For the top-level entity the header is not in the buffer (it came as
/// `fields`), so `headerRange` is empty and `range == bodyRange`. For every other entity `range`
/// covers its header, the blank line and its body, and for a body part of a multipart it excludes
/// the CRLF before the next delimiter (RFC 2046 §5.1.1): exactly the bytes a multipart/signed
/// signature covers for part 1.
///
/// Section numbers follow IMAP (RFC 3501 §6.4.5): the top level is `""`; the parts of a multipart
/// are `"1"`, `"2"`, and their children `"2.1"`...; the message encapsulated in a `message/rfc822`
/// part at `"2"` has the same section `"2"`, and its parts are `"2.1"`, `"2.2"`. `bodySection`
/// gives the IMAP specifier of the entity's body: `TEXT` at the top level, `2.TEXT` for an
/// encapsulated message, the section itself for a body part.
public struct MIMEEntity: Sendable {
    /// Where the entity sits in the tree.
    public enum Role: Sendable, Equatable {
        case topLevel, bodyPart, encapsulatedMessage
    }

    /// What the body holds.
    public indirect enum Content: Sendable {
        case leaf
        case multipart(Multipart)
        case message(MIMEEntity)
    }

    /// The structure of a parsed multipart body.
    public struct Multipart: Sendable {
        /// The boundary parameter as given.
        public let boundary: String
        /// Bytes before the first delimiter, without the line end that precedes it.
        public let preambleRange: Range<Int>
        /// For each part, its delimiter: the preceding line end (absent for a delimiter at the very
        /// start), `--boundary`, transport padding and the delimiter line's own line end.
        public let delimiterRanges: [Range<Int>]
        /// The body parts.
        public let parts: [MIMEEntity]
        /// The close-delimiter with its preceding and (if present) following line end; nil if missing.
        public let closeDelimiterRange: Range<Int>?
        /// Bytes after the close-delimiter line (empty when it is missing).
        public let epilogueRange: Range<Int>
        /// False when the close-delimiter is missing.
        public var isTerminated: Bool { closeDelimiterRange != nil }
    }

    /// The buffer all ranges point into.
    public let buffer: [UInt8]
    /// The header fields of this entity (for the top level: as passed to the parser).
    public let fields: [HeaderField]
    /// The parsed Content-Type, or the default (`text/plain; charset=us-ascii`, `message/rfc822` in a digest).
    public let contentType: ContentType
    /// The Content-Transfer-Encoding (7bit when absent).
    public let transferEncoding: TransferEncoding
    /// The Content-Disposition, if present and valid.
    public let disposition: ContentDisposition?
    /// Top level, body part of a multipart, or message encapsulated in `message/rfc822`.
    public let role: Role
    /// IMAP section number (see the type's documentation).
    public let section: String
    /// Nesting depth: 0 at the top level.
    public let depth: Int
    /// The whole entity in `buffer` (header, blank line, body; body only at the top level).
    public let range: Range<Int>
    /// The header field lines with their line ends, without the blank line (empty at the top level).
    public let headerRange: Range<Int>
    /// The body, up to (not including) the line end before the next delimiter.
    public let bodyRange: Range<Int>
    /// Leaf, parsed multipart, or encapsulated message.
    public let content: Content
    /// Irregularities the parser tolerated.
    public let defects: [MIMEDefect]

    /// The exact bytes of the entity: header, blank line and body (body only at the top level).
    public var rawBytes: ArraySlice<UInt8> { buffer[range] }
    /// The exact header bytes (each field with its line end; no blank line).
    public var headerBytes: ArraySlice<UInt8> { buffer[headerRange] }
    /// The exact body bytes (still transfer-encoded).
    public var body: ArraySlice<UInt8> { buffer[bodyRange] }
    /// The bytes between header and body: the blank line, or empty.
    public var separatorRange: Range<Int> { headerRange.upperBound..<bodyRange.lowerBound }

    /// The parts of a multipart, else empty.
    public var parts: [MIMEEntity] {
        if case .multipart(let m) = content { return m.parts }
        return []
    }
    /// The multipart structure, if this entity is a parsed multipart.
    public var multipart: Multipart? {
        if case .multipart(let m) = content { return m }
        return nil
    }
    /// The encapsulated message of a `message/rfc822` entity.
    public var encapsulatedMessage: MIMEEntity? {
        if case .message(let m) = content { return m }
        return nil
    }
    /// The preamble of a multipart (without the line end before the first delimiter).
    public var preamble: ArraySlice<UInt8>? { multipart.map { buffer[$0.preambleRange] } }
    /// The epilogue of a multipart (after the close-delimiter line).
    public var epilogue: ArraySlice<UInt8>? { multipart.map { buffer[$0.epilogueRange] } }

    /// The IMAP specifier of this entity's body (`TEXT`, `2.TEXT`, or the section of a body part).
    public var bodySection: String {
        switch role {
        case .topLevel: return "TEXT"
        case .encapsulatedMessage: return "\(section).TEXT"
        case .bodyPart: return section
        }
    }

    /// The body with its transfer encoding removed (quoted-printable and base64 decoded tolerantly;
    /// other encodings returned as they are).
    public var decodedBody: [UInt8] {
        switch transferEncoding {
        case .quotedPrintable: return QuotedPrintable.decode(body)
        case .base64: return Base64Lines.decode(body).bytes
        default: return Array(body)
        }
    }

    /// This entity and all entities below it, depth first, in document order.
    public var allEntities: [MIMEEntity] {
        var out = [MIMEEntity]()
        var stack = [self]
        while let e = stack.popLast() {
            out.append(e)
            switch e.content {
            case .leaf: break
            case .multipart(let m): stack.append(contentsOf: m.parts.reversed())
            case .message(let inner): stack.append(inner)
            }
        }
        return out
    }

    /// The body part with this IMAP section number (`"1"`, `"2.1"`); `""` is the top level.
    /// For a `message/rfc822` part the part itself is returned, not the encapsulated message.
    public func entity(atSection wanted: String) -> MIMEEntity? {
        allEntities.first { $0.section == wanted && $0.role != .encapsulatedMessage }
    }
}
