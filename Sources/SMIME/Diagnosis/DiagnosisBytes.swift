// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME

/// Byte helpers for the diagnosis: searching, cutting, and reading a footer's first line.
enum DiagnosisBytes {
    static let crlf: [UInt8] = [0x0D, 0x0A]

    /// Start offsets of `needle` in `bytes[range]`, at most `limit` of them (nil when there are more).
    static func occurrences(of needle: [UInt8], in bytes: [UInt8], range: Range<Int>, limit: Int) -> [Int]? {
        guard !needle.isEmpty, range.count >= needle.count else { return [] }
        var found: [Int] = []
        return bytes.withUnsafeBufferPointer { buffer -> [Int]? in
            var index = range.lowerBound
            while let offset = ByteSearch.firstOffset(of: needle, in: UnsafeBufferPointer(rebasing: buffer[index..<range.upperBound])) {
                if found.count == limit { return nil }
                found.append(index + offset)
                index += offset + needle.count
            }
            return found
        }
    }

    /// The offset of the last occurrence of an ASCII `needle` in `bytes[range]`, ignoring case.
    static func lastOccurrence(ofCaseInsensitive needle: String, in bytes: [UInt8], range: Range<Int>) -> Int? {
        let lowered = Array(needle.lowercased().utf8)
        guard !lowered.isEmpty, range.count >= lowered.count else { return nil }
        var index = range.upperBound - lowered.count
        while index >= range.lowerBound {
            var matches = true
            for offset in 0..<lowered.count where lower(bytes[index + offset]) != lowered[offset] {
                matches = false
                break
            }
            if matches { return index }
            index -= 1
        }
        return nil
    }

    static func lower(_ byte: UInt8) -> UInt8 { (0x41...0x5A).contains(byte) ? byte + 0x20 : byte }

    /// The pieces of `0..<total` after `start`, leaving out `removals` (sorted, disjoint, all at
    /// or after `start`) and putting `insertions` (offset, bytes) in, in offset order.
    static func pieces(from start: Int, total: Int, removals: [Range<Int>] = [],
                       insertions: [(Int, [UInt8])] = []) -> [DiagnosisPiece] {
        var edits: [(at: Int, end: Int, bytes: [UInt8])] = removals.map { ($0.lowerBound, $0.upperBound, []) }
        edits += insertions.map { ($0.0, $0.0, $0.1) }
        edits.sort { $0.at < $1.at || ($0.at == $1.at && $0.end < $1.end) }
        var out: [DiagnosisPiece] = []
        var cursor = start
        for edit in edits where edit.at >= cursor {
            if edit.at > cursor { out.append(.base(cursor..<edit.at)) }
            if !edit.bytes.isEmpty { out.append(.bytes(edit.bytes)) }
            cursor = max(cursor, edit.end)
        }
        if cursor < total { out.append(.base(cursor..<total)) }
        return out
    }

    /// The offsets of the CR of the last `limit` CRLFs in `bytes[range]`, last first; only the
    /// last `window` bytes are searched (a 20 MB line is not scanned).
    static func lineEnds(in bytes: [UInt8], range: Range<Int>, limit: Int, window: Int = 65_536) -> [Int] {
        var out: [Int] = []
        var index = range.upperBound - 2
        let floor = max(range.lowerBound, range.upperBound - window)
        while index >= floor, out.count < limit {
            if bytes[index] == 0x0D, bytes[index + 1] == 0x0A { out.append(index) }
            index -= 1
        }
        return out
    }

    /// The first line of `bytes` with letters or digits in it (quoted-printable decoded when `qp`, HTML tags removed
    /// when `html`), trimmed and at most 200 characters.
    static func firstLine<C: Collection>(_ bytes: C, qp: Bool, html: Bool = false) -> String? where C.Element == UInt8 {
        let limited = Array(bytes.prefix(4_096))
        let decoded = qp ? QuotedPrintable.decode(limited) : limited
        var text = String(decoding: decoded, as: UTF8.self)
        if html { text = stripTags(text) }
        for line in text.split(whereSeparator: \.isNewline) {
            // Separator lines ("-- ", "____") say nothing; the first line with words does.
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.contains(where: { $0.isLetter || $0.isNumber }) { return String(trimmed.prefix(200)) }
        }
        return nil
    }

    /// HTML text without tags (`<br>` becomes a line end), for showing an inserted footer.
    static func stripTags(_ html: String) -> String {
        var out = ""
        var inTag = false
        var tag = ""
        for character in html {
            if character == "<" { inTag = true; tag = ""; continue }
            if inTag {
                if character == ">" {
                    inTag = false
                    let name = tag.lowercased()
                    if name.hasPrefix("br") || name.hasPrefix("p") || name.hasPrefix("/p") || name.hasPrefix("div") { out += "\n" }
                } else {
                    tag.append(character)
                }
                continue
            }
            out.append(character)
        }
        return out
    }
}
