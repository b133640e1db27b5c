// SPDX-License-Identifier: Apache-2.0
/// One parameter of a structured MIME field (`name` lower-cased; `value` unquoted and, for RFC 2231
/// parameters, percent-decoded, joined across continuations and converted from its charset).
public struct MIMEParameter: Sendable, Equatable {
    /// Lower-cased name without RFC 2231 `*` suffixes.
    public let name: String
    /// The decoded value.
    public let value: String

    /// A parameter (the name should be lower-case).
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A scanner for RFC 2045 structured values: tokens, quoted strings, comments (nested, skipped),
/// `tspecials`. It is lenient in the ways real mail needs: unquoted parameter values may contain
/// `=` and `/` (e.g. `boundary=----=_Part_1`), and 8-bit characters count as token characters.
struct StructuredScanner {
    private let s: [Unicode.Scalar]
    private(set) var i = 0

    init(_ text: String) { s = Array(text.unicodeScalars) }

    var atEnd: Bool { i >= s.count }

    /// Skips white space, line breaks and comments (nesting bounded by the input length).
    mutating func skipCFWS() {
        while i < s.count {
            let c = s[i]
            if c == " " || c == "\t" || c == "\r" || c == "\n" {
                i += 1
            } else if c == "(" {
                var depth = 0
                while i < s.count {
                    let d = s[i]
                    if d == "\\" { i += 2; continue }
                    if d == "(" { depth += 1 }
                    if d == ")" { depth -= 1; if depth == 0 { i += 1; break } }
                    i += 1
                }
            } else {
                return
            }
        }
    }

    static func isTSpecial(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "(", ")", "<", ">", "@", ",", ";", ":", "\\", "\"", "/", "[", "]", "?", "=": return true
        default: return false
        }
    }

    /// The scalars in `range` as a string; ASCII (nearly always) written as bytes directly, since
    /// appending scalar by scalar showed in the per-message profile.
    private func text(_ range: Range<Int>) -> String {
        guard s[range].allSatisfy({ $0.isASCII }) else { return String(String.UnicodeScalarView(s[range])) }
        return String(unsafeUninitializedCapacity: range.count) { out in
            for (n, k) in range.enumerated() { out[n] = UInt8(truncatingIfNeeded: s[k].value) }
            return range.count
        }
    }

    static func isTokenChar(_ c: Unicode.Scalar) -> Bool {
        c.value > 0x20 && c.value != 0x7F && !isTSpecial(c)
    }

    /// Reads a token (after skipping CFWS); nil when none is there.
    mutating func token() -> String? {
        skipCFWS()
        let start = i
        while i < s.count && StructuredScanner.isTokenChar(s[i]) { i += 1 }
        return i > start ? text(start..<i) : nil
    }

    /// Consumes `c` (after skipping CFWS) when it is next.
    mutating func consume(_ c: Unicode.Scalar) -> Bool {
        skipCFWS()
        if i < s.count && s[i] == c { i += 1; return true }
        return false
    }

    /// Reads a quoted string starting at `"` (quoted-pairs resolved, folds removed); nil if not at `"`.
    mutating func quotedString() -> String? {
        guard i < s.count, s[i] == "\"" else { return nil }
        i += 1
        // The usual case, no quoted-pair and no line break inside: one slice, one String
        // (appending scalar by scalar cost 350 instructions per character).
        let start = i
        while i < s.count {
            let c = s[i]
            if c == "\\" || c == "\r" || c == "\n" { break }
            if c == "\"" { let value = text(start..<i); i += 1; return value }
            i += 1
        }
        i = start
        var out = String.UnicodeScalarView()
        while i < s.count {
            let c = s[i]
            if c == "\\", i + 1 < s.count { out.append(s[i + 1]); i += 2; continue }
            i += 1
            if c == "\"" { return String(out) }
            if c == "\r" || c == "\n" { continue }
            out.append(c)
        }
        return String(out)   // unterminated: take what is there
    }

    /// Reads a parameter value: a quoted string, or (leniently) everything up to `;`, white space or `(`.
    mutating func parameterValue() -> String {
        skipCFWS()
        if let q = quotedString() { return q }
        let start = i
        while i < s.count {
            let c = s[i]
            if c == ";" || c == " " || c == "\t" || c == "\r" || c == "\n" || c == "(" { break }
            i += 1
        }
        return text(start..<i)
    }

    /// Skips to just after the next `;` (or to the end).
    mutating func skipPastSemicolon() {
        while i < s.count {
            if s[i] == "\"" { _ = quotedString(); continue }
            if s[i] == "(" { skipCFWS(); continue }
            i += 1
            if s[i - 1] == ";" { return }
        }
    }

    /// Parses `*(";" parameter)` to the end, with RFC 2231 continuations and charsets resolved.
    mutating func parameters() -> [MIMEParameter] {
        var raw = [(name: String, value: String)]()
        while !atEnd {
            guard consume(";") else { skipPastSemicolon(); continue }
            guard let name = token() else { continue }
            guard consume("=") else { continue }
            raw.append((name.lowercased(), parameterValue()))
            if raw.count >= 1_000 { break }   // bounded work on hostile input
        }
        return RFC2231.combine(raw)
    }
}

/// RFC 2231 parameter value continuations (`name*0`, `name*1*`) and charset/language (`name*`).
enum RFC2231 {
    static func combine(_ raw: [(name: String, value: String)]) -> [MIMEParameter] {
        // Nearly every header has no RFC 2231 name: the first value of each name, in order,
        // without the dictionaries below (they were 10,000 instructions per Content-Type). The
        // duplicate check is quadratic, so only for a handful of parameters.
        if raw.count <= 16, !raw.contains(where: { $0.name.utf8.contains(UInt8(ascii: "*")) }) {
            var result = [MIMEParameter]()
            result.reserveCapacity(raw.count)
            for (name, value) in raw where !result.contains(where: { $0.name == name }) {
                result.append(MIMEParameter(name: name, value: value))
            }
            return result
        }
        struct Piece { var index: Int; var extended: Bool; var value: String }
        var order = [String]()
        var plain = [String: String]()
        var pieces = [String: [Piece]]()

        for (name, value) in raw {
            var base = Substring(name)
            var extended = false
            if base.hasSuffix("*") { extended = true; base = base.dropLast() }
            var index = -1   // -1: not a continuation
            if let star = base.lastIndex(of: "*"), let n = Int(base[base.index(after: star)...]), n >= 0, n < 1000 {
                index = n
                base = base[..<star]
            }
            let key = String(base)
            if !order.contains(key) { order.append(key) }
            if index < 0 && !extended {
                if plain[key] == nil { plain[key] = value }
            } else {
                pieces[key, default: []].append(Piece(index: max(index, 0), extended: extended, value: value))
            }
        }

        var result = [MIMEParameter]()
        for key in order {
            if var list = pieces[key] {
                list.sort { $0.index < $1.index }
                var bytes = [UInt8]()
                var charset = "us-ascii"
                for (n, piece) in list.enumerated() {
                    var v = Substring(piece.value)
                    if piece.extended && n == 0 {
                        // charset'language'value
                        let parts = v.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                        if parts.count == 3 { charset = String(parts[0]); v = parts[2] }
                    }
                    bytes.append(contentsOf: piece.extended ? percentDecode(v) : Array(v.utf8))
                }
                result.append(MIMEParameter(name: key, value: Charsets.decode(bytes, charset: charset)))
            } else if let v = plain[key] {
                result.append(MIMEParameter(name: key, value: v))
            }
        }
        return result
    }

    static func percentDecode(_ s: Substring) -> [UInt8] {
        let u = Array(s.utf8)
        var out = [UInt8]()
        var i = 0
        while i < u.count {
            if u[i] == 0x25, i + 2 < u.count, let h = hex(u[i + 1]), let l = hex(u[i + 2]) {
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(u[i])
                i += 1
            }
        }
        return out
    }

    static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }
}
