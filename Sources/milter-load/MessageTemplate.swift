// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

/// The message every session sends: header fields as an MTA hands them to a milter (value after
/// the colon, folds as bare LF) and the body with CRLF line ends.
struct MessageTemplate: Sendable {
    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    var fields: [(name: String, value: String)]
    var body: [UInt8]

    /// Total size as it would be on the wire (CRLF line ends), for MB/s.
    var size: Int {
        fields.reduce(0) { $0 + $1.name.utf8.count + 1 + $1.value.utf8.count + 2 } + 2 + body.count
    }

    /// A plain-text message of about `size` bytes from `sender`: US-ASCII lines of 72 characters,
    /// so the milter's 7-bit conversion leaves the body as it is (the common case).
    static func generated(size: Int, sender: String, recipient: String) -> MessageTemplate {
        let fields: [(name: String, value: String)] = [
            ("From", "Load Generator <\(sender)>"),
            ("To", "<\(recipient)>"),
            ("Subject", "milter-load test message of \(size) bytes"),
            ("Date", "Mon, 1 Jan 2024 00:00:00 +0000"),
            ("Message-ID", "<milter-load.\(size)@example.com>"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=us-ascii"),
        ]
        var template = MessageTemplate(fields: fields, body: [])
        let target = max(size - template.size, 2)
        let words = Array("the quick brown fox jumps over the lazy dog 0123456789 statements newsletter ".utf8)
        var body: [UInt8] = []
        body.reserveCapacity(target + 80)
        var line = 0
        while body.count < target {
            let width = min(72, max(target - body.count - 2, 0))
            for i in 0..<width { body.append(words[(line * 7 + i) % words.count]) }
            // No trailing white space: the milter would have to quote it (QP =20).
            if body.last == 0x20 { body[body.count - 1] = UInt8(ascii: ".") }
            body.append(0x0D)
            body.append(0x0A)
            line += 1
        }
        template.body = body
        return template
    }

    /// A message read from a file (CRLF or LF line ends), split as an MTA would.
    static func load(path: String) throws -> MessageTemplate {
        guard let file = fopen(path, "rb") else {
            throw ParseError(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return try parse(bytes)
    }

    static func parse(_ bytes: [UInt8]) throws -> MessageTemplate {
        var lines: [ArraySlice<UInt8>] = []
        var i = 0
        var lineStart = 0
        var bodyStart: Int?
        while i < bytes.count {
            if bytes[i] == 0x0A {
                var end = i
                if end > lineStart && bytes[end - 1] == 0x0D { end -= 1 }
                if end == lineStart { bodyStart = i + 1; break }
                lines.append(bytes[lineStart..<end])
                lineStart = i + 1
            }
            i += 1
        }
        guard let bodyStart else { throw ParseError(description: "message has no empty line after the header") }
        var fields: [(name: String, value: String)] = []
        for line in lines {
            if let first = line.first, first == 0x20 || first == 0x09 {
                guard !fields.isEmpty else { throw ParseError(description: "header starts with a continuation line") }
                fields[fields.count - 1].value += "\n" + String(decoding: line, as: UTF8.self)
                continue
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw ParseError(description: "header line without a colon")
            }
            var value = line[(colon + 1)...]
            if value.first == 0x20 { value = value.dropFirst() }
            fields.append((String(decoding: line[..<colon], as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        // The MTA hands the body over with CRLF line ends.
        var body: [UInt8] = []
        body.reserveCapacity(bytes.count - bodyStart + 1024)
        var previous: UInt8 = 0
        for b in bytes[bodyStart...] {
            if b == 0x0A && previous != 0x0D { body.append(0x0D) }
            body.append(b)
            previous = b
        }
        return MessageTemplate(fields: fields, body: body)
    }

    /// The address in the From field, for the envelope sender when none is given.
    var fromAddress: String? {
        guard let from = fields.first(where: { $0.name.lowercased() == "from" })?.value else { return nil }
        if let open = from.lastIndex(of: "<"), let close = from.lastIndex(of: ">"), open < close {
            return String(from[from.index(after: open)..<close])
        }
        return from.trimmed(of: " \t\n")
    }
}

extension String {
    func trimmed(of set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
