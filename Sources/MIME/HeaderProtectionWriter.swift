// SPDX-License-Identifier: Apache-2.0
/// RFC 9788 header protection for a signed-only message: the entity to sign gets copies of the
/// message's protected header fields and `hp="clear"` on its Content-Type, so the signature
/// covers From, To, Subject... and a receiver can tell when the outer ones were changed.
///
/// The outer header is left as it is (for signed-only mail RFC 9788 needs no `HP-Outer`), so a
/// client without header-protection support shows the message as before.
extension SignableEntity {
    /// The header fields copied into the signed entity, in the order they appear in the message.
    public static let protectedFieldNames: Set<String> = ["from", "to", "cc", "subject", "date", "message-id", "reply-to"]

    /// This entity with RFC 9788 header protection (`hp="clear"`) taken from `fields`, the
    /// message's top-level header. An entity that already declares `hp` is returned unchanged.
    public func protectingHeaders(_ fields: [HeaderField]) -> SignableEntity {
        SignableEntity(bytes: Self.protect(bytes, fields: fields), movedFieldIndexes: movedFieldIndexes, warnings: warnings)
    }

    /// The entity bytes (header, blank line, body; CRLF) with the protected fields added after
    /// its own fields and `hp="clear"` appended to its Content-Type.
    static func protect(_ entity: [UInt8], fields: [HeaderField]) -> [UInt8] {
        guard let blank = headerEnd(entity) else { return entity }
        let header = Array(entity[..<blank])   // every field line with its CRLF
        guard let (start, end) = contentTypeRange(header) else { return entity }
        let contentType = HeaderText.decode(header[start..<end]).text
        if let parsed = ContentType(parsing: String(contentType.drop { $0 != ":" }.dropFirst())), parsed.parameter("hp") != nil {
            return entity
        }
        var value = Array(header[start..<end])
        while let last = value.last, last == 0x20 || last == 0x09 || last == 0x3B { value.removeLast() }
        var out = Array(header[..<start]) + value + Array("; hp=\"clear\"".utf8) + Array(header[end...])
        for field in fields where protectedFieldNames.contains(field.name.lowercased()) {
            if field.hasEightBitValue, field.name.lowercased() == "subject" {
                let unfolded = HeaderText.decode(field.valueBytes.filter { $0 != 0x0D && $0 != 0x0A }).text.trimmingWhitespace
                let bytes = field.isLatin1Fallback ? HeaderText.latin1Bytes(unfolded) : Array(unfolded.utf8)
                let charset = field.isLatin1Fallback ? "unknown-8bit" : "utf-8"
                out += Array((field.name + ": " + EncodedWord.words(bytes, charset: charset).joined(separator: "\r\n ") + "\r\n").utf8)
            } else {
                out += field.canonicalBytes
            }
        }
        return out + entity[blank...]
    }

    /// The index of the blank line ending the header (just after the last field's CRLF).
    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        if bytes.starts(with: [0x0D, 0x0A]) { return 0 }
        var i = 0
        while i + 3 < bytes.count {
            if bytes[i] == 0x0D, bytes[i + 1] == 0x0A, bytes[i + 2] == 0x0D, bytes[i + 3] == 0x0A { return i + 2 }
            i += 1
        }
        return nil
    }

    /// The Content-Type field in `header` (field lines with CRLF): from its name to the CRLF
    /// ending its last continuation line (exclusive).
    static func contentTypeRange(_ header: [UInt8]) -> (Int, Int)? {
        let name = Array("content-type:".utf8)
        var lineStart = 0
        while lineStart < header.count {
            let isField = header.count - lineStart >= name.count
                && zip(header[lineStart..<(lineStart + name.count)], name).allSatisfy { ((0x41...0x5A).contains($0) ? $0 | 0x20 : $0) == $1 }
            var end = lineStart
            // The field runs on while the next line starts with white space (a fold).
            repeat {
                while end + 1 < header.count, !(header[end] == 0x0D && header[end + 1] == 0x0A) { end += 1 }
                end += 2
            } while end < header.count && (header[end] == 0x20 || header[end] == 0x09)
            if isField { return (lineStart, end - 2) }
            lineStart = end
        }
        return nil
    }
}
