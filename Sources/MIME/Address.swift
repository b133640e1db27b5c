// SPDX-License-Identifier: Apache-2.0
/// One mailbox of an address list.
public struct Mailbox: Sendable, Equatable, CustomStringConvertible {
    /// The display name, unquoted, with RFC 2047 encoded-words decoded; nil when there is none
    /// (a trailing comment as in `a@b (Alice)` is used as the display name).
    public let displayName: String?
    /// The local part as written, without comments and white space; a quoted local part whose
    /// content is a plain dot-atom is unquoted (`"alice"` → `alice`).
    public let localPart: String
    /// The domain as written, without comments and white space (a domain literal keeps its brackets).
    public let domain: String
    /// The name of the group the mailbox was listed in, if any.
    public let group: String?

    /// A mailbox from its parts.
    public init(displayName: String?, localPart: String, domain: String, group: String? = nil) {
        self.displayName = displayName
        self.localPart = localPart
        self.domain = domain
        self.group = group
    }

    /// `local@domain` with the domain lower-cased and the local part as written (RFC 5321 §2.4).
    public var address: String { "\(localPart)@\(domain.lowercased())" }
    /// The address fully lower-cased, for comparisons (RFC 8550 §3: local part SHOULD be compared
    /// case-insensitively).
    public var normalisedAddress: String { address.lowercased() }

    public var description: String {
        displayName.map { "\($0) <\(address)>" } ?? address
    }
}

/// RFC 5322 §3.4 address lists.
public enum AddressList {
    /// The mailboxes in an address-list field value (From, To, Cc, Reply-To, Sender...).
    ///
    /// Handles display names (atoms, quoted strings, RFC 2047 encoded-words), comments, angle
    /// addresses, groups (`undisclosed-recipients:;` gives no mailbox; members of a named group
    /// are returned with `group` set), and obsolete forms: empty list elements, source routes
    /// `<@a,@b:x@y>`, CFWS around dots, a missing `;` or `>` at the end. 8-bit (SMTPUTF8) characters
    /// are accepted in names, local parts and domains.
    ///
    /// - Throws: `MIMEError.invalidAddress` for an element that is not a mailbox or group (for
    ///   example a word without `@`).
    public static func mailboxes(in value: String) throws -> [Mailbox] {
        var parser = AddressParser(value)
        return try parser.addressList()
    }
}

/// SMTP envelope addresses (MAIL FROM, RCPT TO).
public enum EnvelopeAddress {
    /// Normalises an envelope address for comparison: surrounding white space and `<>` removed, a
    /// source route dropped, a dot-atom quoted local part unquoted, everything lower-cased.
    /// The null reverse-path `<>` gives `""`.
    public static func normalise(_ address: String) -> String {
        var s = Substring(address.trimmingWhitespace)
        if s.hasPrefix("<") { s = s.dropFirst() }
        if s.hasSuffix(">") { s = s.dropLast() }
        let inner = String(s).trimmingWhitespace
        if inner.isEmpty { return "" }
        if let list = try? AddressList.mailboxes(in: "<\(inner)>"), list.count == 1 {
            return list[0].normalisedAddress
        }
        return inner.lowercased()
    }
}

/// A small recursive-descent parser over tokens; bounded by the input length (no recursion on input).
struct AddressParser {
    enum Token: Equatable {
        case atom(String)
        case quoted(String)
        case domainLiteral(String)
        case special(Unicode.Scalar)
        case comment(String)
    }

    private var tokens: [Token] = []
    private var pos = 0

    init(_ value: String) { tokens = AddressParser.tokenize(value) }

    // MARK: tokenizer

    static func tokenize(_ value: String) -> [Token] {
        let s = Array(value.unicodeScalars)
        var out = [Token]()
        var i = 0
        // A switch, not a Set: hashing every scalar of every address field showed in the profile.
        func isSpecial(_ c: Unicode.Scalar) -> Bool {
            switch c {
            case "<", ">", "@", ",", ";", ":", ".", "\\": return true
            default: return false
            }
        }
        while i < s.count {
            let c = s[i]
            if c == " " || c == "\t" || c == "\r" || c == "\n" { i += 1; continue }
            if c == "(" {
                var depth = 0
                var text = String.UnicodeScalarView()
                while i < s.count {
                    let d = s[i]
                    if d == "\\", i + 1 < s.count { text.append(s[i + 1]); i += 2; continue }
                    if d == "(" { depth += 1; if depth > 1 { text.append(d) } }
                    else if d == ")" { depth -= 1; if depth == 0 { i += 1; break }; text.append(d) }
                    else { text.append(d) }
                    i += 1
                }
                out.append(.comment(String(text)))
                continue
            }
            if c == "\"" {
                i += 1
                var text = String.UnicodeScalarView()
                while i < s.count && s[i] != "\"" {
                    if s[i] == "\\", i + 1 < s.count { text.append(s[i + 1]); i += 2; continue }
                    if s[i] != "\r" && s[i] != "\n" { text.append(s[i]) }
                    i += 1
                }
                i += 1
                out.append(.quoted(String(text)))
                continue
            }
            if c == "[" {
                var text = String.UnicodeScalarView()
                while i < s.count && s[i] != "]" {
                    if s[i] != " " && s[i] != "\t" && s[i] != "\r" && s[i] != "\n" { text.append(s[i]) }
                    i += 1
                }
                text.append("]")
                i += 1
                out.append(.domainLiteral(String(text)))
                continue
            }
            if isSpecial(c) || c == ")" || c == "]" {
                out.append(.special(c))
                i += 1
                continue
            }
            var text = String.UnicodeScalarView()
            while i < s.count {
                let d = s[i]
                if d == " " || d == "\t" || d == "\r" || d == "\n" || d == "(" || d == "\"" || d == "[" || d == ")" || d == "]"
                    || isSpecial(d) { break }
                text.append(d)
                i += 1
            }
            out.append(.atom(String(text)))
        }
        return out
    }

    // MARK: grammar

    /// Next non-comment token (comments are skipped).
    private mutating func peek() -> Token? {
        while pos < tokens.count, case .comment = tokens[pos] { pos += 1 }
        return pos < tokens.count ? tokens[pos] : nil
    }

    private mutating func next() -> Token? {
        let t = peek()
        if t != nil { pos += 1 }
        return t
    }

    /// The index after the last token consumed by `addrSpec`.
    private var lastSignificantEnd = 0

    private mutating func isSpecial(_ c: Unicode.Scalar) -> Bool {
        if case .special(c)? = peek() { return true }
        return false
    }

    mutating func addressList() throws -> [Mailbox] {
        var result = [Mailbox]()
        while peek() != nil {
            if isSpecial(",") { pos += 1; continue }         // obs: empty list element
            let (mailboxes, wasGroup) = try address()
            result.append(contentsOf: mailboxes)
            if peek() != nil && !wasGroup {   // leniency: no comma needed after a group's `;`
                guard isSpecial(",") else { throw MIMEError.invalidAddress("unexpected text after an address") }
            }
        }
        return result
    }

    /// One address: a mailbox or a group.
    private mutating func address() throws -> ([Mailbox], Bool) {
        let phraseStart = pos
        let phrase = self.phrase()
        if isSpecial(":") {
            pos += 1
            let groupName = phrase.map { EncodedWord.decode($0) } ?? ""
            var members = [Mailbox]()
            while let t = peek() {
                if t == .special(";") { pos += 1; break }
                if t == .special(",") { pos += 1; continue }
                let m = try mailbox()
                members.append(Mailbox(displayName: m.displayName, localPart: m.localPart, domain: m.domain, group: groupName))
            }
            return (members, true)
        }
        pos = phraseStart
        return ([try mailbox()], false)
    }

    /// A mailbox: `[display-name] <addr-spec>` or a bare addr-spec.
    private mutating func mailbox() throws -> Mailbox {
        let start = pos
        let name = phrase()
        if isSpecial("<") {
            pos += 1
            // obs-route: "@a,@b:" before the addr-spec
            if isSpecial("@") {
                while let t = next(), t != .special(":") {
                    if t == .special(">") { throw MIMEError.invalidAddress("source route without an address") }
                }
            }
            let (local, domain) = try addrSpec()
            if isSpecial(">") { pos += 1 }                   // tolerate a missing `>` at the end
            else if peek() != nil && !isSpecial(",") && !isSpecial(";") {
                throw MIMEError.invalidAddress("angle address not closed")
            }
            _ = peek()
            return Mailbox(displayName: name.map { EncodedWord.decode($0) }, localPart: local, domain: domain)
        }
        pos = start
        let (local, domain) = try addrSpec()
        // A comment right after the addr-spec names the mailbox: `a@b (Alice)`.
        var trailing: String?
        var k = lastSignificantEnd
        while k < tokens.count, case .comment(let c) = tokens[k] {
            if !c.trimmingWhitespace.isEmpty { trailing = c.trimmingWhitespace }
            k += 1
        }
        return Mailbox(displayName: trailing.map { EncodedWord.decode($0) }, localPart: local, domain: domain)
    }

    /// A phrase (display name): words and, leniently, dots; nil when none.
    private mutating func phrase() -> String? {
        var words = [String]()
        while let t = peek() {
            switch t {
            case .atom(let a): words.append(a)
            case .quoted(let q): words.append(q)
            case .special("."): words.append(".")
            default: return join(words)
            }
            pos += 1
        }
        return join(words)
    }

    private func join(_ words: [String]) -> String? {
        if words.isEmpty { return nil }
        var out = ""
        for w in words {
            if w == "." || out.isEmpty { out += w } else { out += " " + w }
        }
        return out
    }

    /// `local-part "@" domain`.
    private mutating func addrSpec() throws -> (String, String) {
        var local = ""
        var expectWord = true
        loop: while let t = peek() {
            switch t {
            case .atom(let a) where expectWord: local += a
            case .quoted(let q) where expectWord: local += AddressParser.quoteIfNeeded(q)
            case .special(".") where !expectWord || local.isEmpty: local += "."   // obs: leading/double dots
            default: break loop
            }
            if case .special = t { expectWord = true } else { expectWord = false }
            pos += 1
        }
        guard !local.isEmpty else { throw MIMEError.invalidAddress("missing local part") }
        guard isSpecial("@") else { throw MIMEError.invalidAddress("no @ in \"\(local.prefix(64))\"") }
        pos += 1
        var domain = ""
        if case .domainLiteral(let d)? = peek() {
            pos += 1
            lastSignificantEnd = pos
            return (local, d)
        }
        expectWord = true
        loop: while let t = peek() {
            switch t {
            case .atom(let a) where expectWord: domain += a; expectWord = false
            case .special(".") where !expectWord: domain += "."; expectWord = true
            default: break loop
            }
            pos += 1
            lastSignificantEnd = pos
        }
        while domain.hasSuffix(".") { domain.removeLast() }
        guard !domain.isEmpty else { throw MIMEError.invalidAddress("missing domain after @") }
        return (local, domain)
    }

    /// Keeps a quoted local part quoted unless its content is a dot-atom (non-ASCII allowed:
    /// SMTPUTF8 local parts). Split by Character, so a dot carrying a combining mark is no
    /// separator (and no atext): such a local part stays quoted.
    static func quoteIfNeeded(_ s: String) -> String {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        let isDotAtom = !s.isEmpty && parts.allSatisfy { part in
            !part.isEmpty && part.unicodeScalars.allSatisfy { $0.value >= 0x80 || DotAtom.isAtext(UInt8($0.value)) }
        }
        if isDotAtom { return s }
        var out = "\""
        for u in s.unicodeScalars {
            if u == "\"" || u == "\\" { out += "\\" }
            out.unicodeScalars.append(u)
        }
        return out + "\""
    }
}

/// RFC 5322 dot-atoms over UTF-8 bytes: one definition for the address parser and the
/// Authentication-Results writer.
public enum DotAtom {
    /// An ASCII letter or digit.
    public static func isLetterOrDigit(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39)
    }

    /// RFC 5322 `atext` (ASCII only).
    public static func isAtext(_ b: UInt8) -> Bool {
        isLetterOrDigit(b) || symbols.contains(b)
    }

    private static let symbols: [UInt8] = Array("!#$%&'*+-/=?^_`{|}~".utf8)

    /// Whether `bytes` are runs of `allowed` bytes separated by single dots: not empty, no
    /// leading, trailing or doubled dot.
    public static func matches(_ bytes: ArraySlice<UInt8>, allowed: (UInt8) -> Bool) -> Bool {
        guard !bytes.isEmpty else { return false }
        var previousWasDot = true
        for b in bytes {
            if b == UInt8(ascii: ".") {
                if previousWasDot { return false }
                previousWasDot = true
            } else {
                guard allowed(b) else { return false }
                previousWasDot = false
            }
        }
        return !previousWasDot
    }
}
