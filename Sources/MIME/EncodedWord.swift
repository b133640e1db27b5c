// SPDX-License-Identifier: Apache-2.0
import Foundation

/// RFC 2047 encoded-words: detection, decoding for display, and encoding (e.g. a Subject tag).
public enum EncodedWord {
    /// True when `value` contains something shaped like an encoded-word (`=?charset?B|Q?text?=`).
    public static func containsEncodedWords(_ value: String) -> Bool {
        var found = false
        scan(value) { piece in if case .word = piece { found = true } }
        return found
    }

    /// Decodes the encoded-words in `value` (white space between adjacent encoded-words is dropped,
    /// RFC 2047 §6.2). Words in an unknown charset are decoded as UTF-8 or ISO-8859-1; malformed
    /// words stay as they are.
    public static func decode(_ value: String) -> String {
        var out = ""
        var pendingSpace = ""
        var lastWasWord = false
        scan(value) { piece in
            switch piece {
            case .text(let t):
                if t.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }) && lastWasWord {
                    pendingSpace += t     // dropped if another encoded-word follows
                } else {
                    out += pendingSpace + t
                    pendingSpace = ""
                    lastWasWord = false
                }
            case .word(let decoded):
                if !lastWasWord { out += pendingSpace }
                pendingSpace = ""
                out += decoded
                lastWasWord = true
            }
        }
        return out + pendingSpace
    }

    /// Returns `text` unchanged when it is printable ASCII (space and tab allowed) and does not look
    /// like an encoded-word; otherwise one or more UTF-8 `B` encoded-words of at most 75 characters,
    /// separated by `separator` (a space by default; `"\r\n "` folds them).
    public static func encode(_ text: String, separator: String = " ") -> String {
        let ascii = text.unicodeScalars.allSatisfy { ($0.value >= 0x20 && $0.value < 0x7F) || $0 == "\t" }
        if ascii && !text.contains("=?") { return text }
        return words(Array(text.utf8), charset: "utf-8").joined(separator: separator)
    }

    /// Puts `tag` (e.g. `[SIGNED]`) in front of a Subject value as received, keeping its leading
    /// white space. An ASCII tag is inserted as plain text followed by a space. A non-ASCII tag is
    /// encoded; when the subject then starts with an encoded-word, the separating space goes inside
    /// the tag's encoded-word, because white space between two encoded-words is not displayed.
    public static func prefix(_ tag: String, to value: String) -> String {
        let leading = String(value.prefix { $0 == " " || $0 == "\t" })
        let rest = String(value.dropFirst(leading.count))
        if rest.isEmpty { return leading + encode(tag) }
        if encode(tag) == tag { return leading + tag + " " + rest }
        if rest.hasPrefix("=?") && containsEncodedWords(String(rest.prefix { $0 != " " && $0 != "\t" })) {
            return leading + encode(tag + " ") + " " + rest
        }
        return leading + encode(tag) + " " + rest
    }

    /// Encoded-words for raw bytes in `charset`, each at most 75 characters; UTF-8 sequences are
    /// never split across words.
    static func words(_ bytes: [UInt8], charset: String) -> [String] {
        let maxChars = max(4, (75 - 7 - charset.utf8.count) / 4 * 4)
        let maxBytes = maxChars / 4 * 3
        var result = [String]()
        var i = 0
        while i < bytes.count {
            var end = min(i + maxBytes, bytes.count)
            if charset == "utf-8" {
                while end < bytes.count && end > i + 1 && bytes[end] & 0xC0 == 0x80 { end -= 1 }
            }
            let b64 = Data(bytes[i..<end]).base64EncodedString()
            result.append("=?\(charset)?B?\(b64)?=")
            i = end
        }
        if result.isEmpty { result.append("=?\(charset)?B??=") }
        return result
    }

    private enum Piece {
        case text(String)
        case word(String)
    }

    /// Splits `value` into plain text and decoded encoded-words.
    private static func scan(_ value: String, _ visit: (Piece) -> Void) {
        let s = Array(value.unicodeScalars)
        var text = String.UnicodeScalarView()
        var i = 0
        while i < s.count {
            if s[i] == "=", i + 1 < s.count, s[i + 1] == "?", let (decoded, next) = parseWord(s, at: i) {
                if !text.isEmpty { visit(.text(String(text))); text = String.UnicodeScalarView() }
                visit(.word(decoded))
                i = next
            } else {
                text.append(s[i])
                i += 1
            }
        }
        if !text.isEmpty { visit(.text(String(text))) }
    }

    /// Parses `=?charset?E?text?=` at `start`; returns the decoded text and the index after it.
    private static func parseWord(_ s: [Unicode.Scalar], at start: Int) -> (String, Int)? {
        var i = start + 2
        var charset = ""
        while i < s.count, s[i] != "?" {
            if s[i] == " " || s[i] == "\t" || i - start > 80 { return nil }
            charset.unicodeScalars.append(s[i]); i += 1
        }
        guard i + 2 < s.count, !charset.isEmpty, s[i + 2] == "?" else { return nil }
        let enc = s[i + 1]
        i += 3
        var payload = [UInt8]()
        while i + 1 < s.count, !(s[i] == "?" && s[i + 1] == "=") {
            let c = s[i]
            if c == " " || c == "\t" || c == "\r" || c == "\n" || c.value >= 0x80 || i - start > 1_000 { return nil }
            payload.append(UInt8(c.value)); i += 1
        }
        guard i + 1 < s.count else { return nil }
        let bytes: [UInt8]
        switch enc {
        case "B", "b":
            bytes = Base64Lines.decode(payload).bytes
        case "Q", "q":
            bytes = QuotedPrintable.decode(payload.map { $0 == 0x5F ? Byte.space : $0 })
        default:
            return nil
        }
        return (Charsets.decode(bytes, charset: charset), i + 2)
    }
}
