// SPDX-License-Identifier: Apache-2.0
import SMIME

/// Parsers for the value types shared by several keys. Each throws `ValueProblem`.
enum ValueParsers {
    /// OpenDKIM booleans: yes/no, true/false, 1/0 (case-insensitive).
    static func boolean(_ text: some StringProtocol) throws -> Bool {
        switch text.lowercased() {
        case "yes", "true", "1": return true
        case "no", "false", "0": return false
        default: throw ValueProblem("expected yes or no")
        }
    }

    /// Permission bits in octal (`0660`, `660`), at most 0777.
    /// A size in bytes with an optional K, M or G suffix (1024-based), at least `minimum`.
    static func byteSize(_ text: some StringProtocol, minimum: Int) throws -> Int {
        var digits = Substring(text)
        var factor = 1
        switch digits.last {
        case "K", "k": factor = 1 << 10
        case "M", "m": factor = 1 << 20
        case "G", "g": factor = 1 << 30
        default: break
        }
        if factor > 1 { digits = digits.dropLast() }
        guard let n = Int(digits), n >= 0, n <= Int(Int32.max) else {
            throw ValueProblem("expected a size in bytes, with an optional K, M or G suffix")
        }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: factor)
        guard !overflow, bytes >= minimum else { throw ValueProblem("expected a size of at least \(minimum) bytes") }
        return bytes
    }

    static func octalMode(_ text: some StringProtocol) throws -> UInt32 {
        guard (1...4).contains(text.count), text.allSatisfy({ ("0"..."7").contains($0) }),
              let value = UInt32(text, radix: 8) else {
            throw ValueProblem("expected octal permission bits such as 0660")
        }
        guard value <= 0o777 else {
            throw ValueProblem("setuid, setgid and sticky bits are not allowed (at most 0777)")
        }
        return value
    }

    /// `sha256`, `sha384` or `sha512` (also `SHA-256` etc.).
    static func digest(_ text: some StringProtocol) throws -> DigestAlgorithm {
        guard let digest = DigestAlgorithm(configValue: String(text)) else {
            throw ValueProblem("expected sha256, sha384 or sha512")
        }
        return digest
    }

    /// One of an enum's raw values, case-insensitive.
    /// `none`, or `ocsp`/`crl` separated by commas, each at most once.
    static func revocationMethods(_ text: some StringProtocol) throws -> [RevocationMethod] {
        let lower = text.lowercased()
        if lower == "none" { return [] }
        var methods: [RevocationMethod] = []
        for part in lower.split(separator: ",", omittingEmptySubsequences: false) {
            let word = String(part.filter { $0 != " " && $0 != "\t" })
            guard let method = RevocationMethod(rawValue: word), !methods.contains(method) else {
                throw ValueProblem("expected none, ocsp, crl, ocsp,crl or crl,ocsp")
            }
            methods.append(method)
        }
        return methods
    }

    /// A whole number of seconds in `range`.
    static func seconds(_ text: some StringProtocol, range: ClosedRange<Int>) throws -> Double {
        guard let value = Int(text), range.contains(value) else {
            throw ValueProblem("expected whole seconds from \(range.lowerBound) to \(range.upperBound)")
        }
        return Double(value)
    }

    /// `host:port` or `http://host:port` (OpenSSL's HTTP client takes both).
    static func proxy(_ text: some StringProtocol) throws -> String {
        var rest = Substring(text)
        if rest.lowercased().hasPrefix("http://") { rest = rest.dropFirst(7) }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), !rest[..<colon].isEmpty,
              let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port),
              !rest.contains(where: { $0 == "@" || $0 == "/" || $0 == " " })
        else {
            throw ValueProblem("expected HOST:PORT or http://HOST:PORT (no user name or password)")
        }
        return "http://" + rest
    }

    static func choice<T: RawRepresentable & CaseIterable>(_ text: some StringProtocol, _: T.Type) throws -> T
    where T.RawValue == String {
        if let value = T(rawValue: text.lowercased()) { return value }
        let names = T.allCases.map(\.rawValue)
        let list = names.count <= 1 ? names.joined()
            : names.dropLast().joined(separator: ", ") + " or " + (names.last ?? "")
        throw ValueProblem("expected \(list)")
    }

    /// An authserv-id (RFC 8601 `value` as a token): printable ASCII without blanks or specials.
    static func authservID(_ text: some StringProtocol) throws -> String {
        let specials: Set<Character> = ["(", ")", "<", ">", "@", ",", ";", ":", "\\", "\"", "/", "[", "]", "?", "="]
        guard !text.isEmpty, text.count <= 255,
              text.allSatisfy({ $0.isASCII && !specials.contains($0) && ("!"..."~").contains($0) }) else {
            throw ValueProblem("expected a host name or similar token (no blanks, quotes, ; or other specials)")
        }
        return String(text)
    }

    /// A Subject tag: at most 100 characters, no control characters (a folded or multi-line
    /// Subject could not be built from it). Non-ASCII text is allowed; it is RFC 2047-encoded
    /// when the tag is used.
    static func subjectTag(_ text: some StringProtocol) throws -> String {
        guard text.count <= 100 else { throw ValueProblem("a subject tag is at most 100 characters") }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) else {
            throw ValueProblem("control characters are not allowed in a subject tag")
        }
        return String(text)
    }

    /// A file system path; relative paths are resolved against `directory`.
    static func path(_ text: some StringProtocol, relativeTo directory: String) throws -> String {
        guard !text.isEmpty else { throw ValueProblem("expected a path") }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ValueProblem("control characters are not allowed in a path")
        }
        guard text.utf8.count <= 4096 else { throw ValueProblem("path is too long") }
        return resolve(String(text), against: directory)
    }

    /// `path` made absolute against `directory` and tidied lexically (`.`, `..`, `//` removed).
    static func resolve(_ path: String, against directory: String) -> String {
        let joined = path.hasPrefix("/") ? path : directory + "/" + path
        var parts: [Substring] = []
        for component in joined.split(separator: "/") {
            switch component {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(component)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// A program with arguments (run without a shell): an absolute program path first.
    static func command(_ text: some StringProtocol) throws -> String {
        let words = text.split(whereSeparator: \.isWhitespace)
        guard let program = words.first, program.hasPrefix("/") else {
            throw ValueProblem("expected an absolute program path, then its arguments")
        }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" }) else {
            throw ValueProblem("control characters are not allowed in a command")
        }
        return words.joined(separator: " ")
    }
}
