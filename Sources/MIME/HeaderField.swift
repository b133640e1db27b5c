// SPDX-License-Identifier: Apache-2.0
/// One header field as received.
///
/// `value` is everything after the colon exactly as received: the leading space (if any) is kept and
/// folds stay in place as `\n` (libmilter) or `\r\n` (message files).
///
/// Bytes that are not valid UTF-8 (raw ISO-8859-x or Shift_JIS in a header) are decoded as
/// ISO-8859-1, one byte per Unicode scalar U+0000...U+00FF, and the field remembers that choice, so
/// `valueBytes` gives back exactly the bytes received. This matters for the Content-* fields of a
/// signed entity, which must be re-emitted byte for byte.
public struct HeaderField: Sendable, Equatable, CustomStringConvertible {
    /// The field name as received (case kept).
    public let name: String
    /// The value after the colon, leading white space and folds kept.
    public let value: String
    /// True when `value` was decoded from non-UTF-8 bytes as ISO-8859-1.
    public let isLatin1Fallback: Bool

    /// A field from text (encoded as UTF-8 when emitted).
    public init(name: String, value: String) {
        self.name = name
        self.value = value
        self.isLatin1Fallback = false
    }

    /// A field from the raw bytes of its value: UTF-8 when valid, else ISO-8859-1 (lossless).
    public init<C: Collection>(name: String, rawValue: C) where C.Element == UInt8 {
        self.name = name
        let decoded = HeaderText.decode(rawValue)
        self.value = decoded.text
        self.isLatin1Fallback = decoded.isLatin1
    }

    /// The value bytes exactly as received (see the type's documentation).
    public var valueBytes: [UInt8] {
        isLatin1Fallback ? HeaderText.latin1Bytes(value) : Array(value.utf8)
    }

    /// The value unfolded (RFC 5322 §2.2.3: line breaks removed) and trimmed of surrounding white space.
    public var unfoldedValue: String {
        let scalars = value.unicodeScalars.filter { $0 != "\r" && $0 != "\n" }
        var s = String(String.UnicodeScalarView(scalars))
        while let f = s.unicodeScalars.first, f == " " || f == "\t" { s.unicodeScalars.removeFirst() }
        while let l = s.unicodeScalars.last, l == " " || l == "\t" { s.unicodeScalars.removeLast() }
        return s
    }

    /// Case-insensitive comparison of the field name (RFC 5322 §1.2.2).
    public func hasName(_ other: String) -> Bool {
        HeaderField.namesEqual(name, other)
    }

    /// Whether two field names are equal ignoring case: byte by byte for ASCII names (no
    /// allocation: this runs for every field of every message), `lowercased()` otherwise.
    static func namesEqual(_ a: String, _ b: String) -> Bool {
        var ua = a.utf8.makeIterator()
        var ub = b.utf8.makeIterator()
        while true {
            switch (ua.next(), ub.next()) {
            case (nil, nil):
                return true
            case let (x?, y?):
                if x >= 0x80 || y >= 0x80 { return a.lowercased() == b.lowercased() }
                if x != y && x | 0x20 != y | 0x20 { return false }
                if x != y, !(0x61...0x7A).contains(x | 0x20) { return false }
            default:
                // Different lengths: equal only if a non-ASCII name lowercases to the other.
                return (a.utf8.contains { $0 >= 0x80 } || b.utf8.contains { $0 >= 0x80 })
                    && a.lowercased() == b.lowercased()
            }
        }
    }

    /// True when the value contains a byte ≥ 0x80.
    public var hasEightBitValue: Bool { valueBytes.contains { $0 >= 0x80 } }

    /// `name:value` followed by CRLF, with every fold (bare LF, bare CR or CRLF, then white
    /// space) written as CRLF and every other line break in the value as a space (see
    /// `canonicalValueBytes`).
    public var canonicalBytes: [UInt8] {
        var out = Array(name.utf8)
        out.append(Byte.colon)
        out.append(contentsOf: canonicalValueBytes)
        out.append(contentsOf: Byte.crlf)
        return out
    }

    /// The value with every fold written as CRLF. A line break that is not a fold (a stray CR
    /// inside a line, as a `\r\r\n` line end leaves it, or a line end before a byte that is not
    /// white space or at the end of the value) becomes a space: written as CRLF it would end the
    /// field there, or the whole header with a blank line, and what follows would be read as
    /// other fields or as body.
    public var canonicalValueBytes: [UInt8] {
        let bytes = valueBytes
        guard bytes.contains(where: { $0 == Byte.cr || $0 == Byte.lf }) else { return bytes }
        var out = [UInt8]()
        out.reserveCapacity(bytes.count + 8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            guard b == Byte.cr || b == Byte.lf else { out.append(b); i += 1; continue }
            let next = b == Byte.cr && i + 1 < bytes.count && bytes[i + 1] == Byte.lf ? i + 2 : i + 1
            if next < bytes.count && Byte.isWSP(bytes[next]) {
                out.append(contentsOf: Byte.crlf)
            } else {
                out.append(Byte.space)
            }
            i = next
        }
        return out
    }

    /// True when `canonicalValueBytes` had to write a line break of the value as a space.
    public var hasLineBreakThatIsNotAFold: Bool {
        let bytes = valueBytes
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            guard b == Byte.cr || b == Byte.lf else { i += 1; continue }
            let next = b == Byte.cr && i + 1 < bytes.count && bytes[i + 1] == Byte.lf ? i + 2 : i + 1
            if next >= bytes.count || !Byte.isWSP(bytes[next]) { return true }
            i = next
        }
        return false
    }

    public var description: String { "\(name):\(value)" }
}

extension Array where Element == HeaderField {
    /// The first field with this name (case-insensitive).
    public func first(named name: String) -> HeaderField? {
        first { HeaderField.namesEqual($0.name, name) }
    }

    /// All fields with this name (case-insensitive), in order.
    public func all(named name: String) -> [HeaderField] {
        filter { HeaderField.namesEqual($0.name, name) }
    }
}

/// Converting header bytes to `String` and back without losing bytes.
public enum HeaderText {
    /// UTF-8 when the bytes are valid UTF-8, else ISO-8859-1 (one scalar per byte).
    public static func decode<C: Collection>(_ bytes: C) -> (text: String, isLatin1: Bool) where C.Element == UInt8 {
        // One concrete array (the generic collection is walked through witness tables otherwise);
        // ASCII, nearly every field name and value, is valid UTF-8 as it stands.
        let array = Array(bytes)
        if array.allSatisfy({ $0 < 0x80 }) { return (String(decoding: array, as: UTF8.self), false) }
        if let s = String(validating: array, as: UTF8.self) { return (s, false) }
        return (latin1String(bytes), true)
    }

    /// Decodes bytes as ISO-8859-1.
    public static func latin1String<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var view = String.UnicodeScalarView()
        for b in bytes { view.append(Unicode.Scalar(b)) }
        return String(view)
    }

    /// Encodes a string decoded by `latin1String` back to its bytes (scalars above U+00FF, which such
    /// a string cannot contain, are written as UTF-8).
    public static func latin1Bytes(_ s: String) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(s.unicodeScalars.count)
        for u in s.unicodeScalars {
            if u.value <= 0xFF { out.append(UInt8(u.value)) } else { out.append(contentsOf: Array(String(u).utf8)) }
        }
        return out
    }
}
