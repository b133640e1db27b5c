// SPDX-License-Identifier: Apache-2.0
/// A sender address pattern of the signing table.
///
/// Forms (all case-insensitive): `user@example.com` (that address), `*@example.com` (any user
/// at exactly that domain), `*@*.example.com` (any user at any subdomain of example.com, but not
/// example.com itself), `user@*.example.com`, `user@*` (that user at any domain) and `*` (anything).
public struct AddressPattern: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// What the local part (before the last `@`) must be.
    public enum LocalPart: Sendable, Equatable, Hashable {
        case any
        case exact(String)
    }

    /// What the domain (after the last `@`) must be.
    public enum DomainPart: Sendable, Equatable, Hashable {
        case any
        case exact(String)
        /// A proper subdomain of the given domain (`*.example.com`).
        case subdomain(of: String)
    }

    /// Nil for the catch-all `*`, which also matches strings that are not addresses.
    public let parts: (local: LocalPart, domain: DomainPart)?

    /// The catch-all pattern `*`.
    public static let anything = AddressPattern(parts: nil)

    init(parts: (local: LocalPart, domain: DomainPart)?) {
        self.parts = parts
    }

    public static func == (a: AddressPattern, b: AddressPattern) -> Bool {
        a.parts?.local == b.parts?.local && a.parts?.domain == b.parts?.domain
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(parts?.local)
        hasher.combine(parts?.domain)
    }

    /// The pattern as written in a table (lower case).
    public var description: String {
        guard let parts else { return "*" }
        let local: String
        switch parts.local {
        case .any: local = "*"
        case let .exact(text): local = text
        }
        let domain: String
        switch parts.domain {
        case .any: domain = "*"
        case let .exact(text): domain = text
        case let .subdomain(of: text): domain = "*." + text
        }
        return local + "@" + domain
    }

    /// Whether `address` (already lower-cased and stripped of `<>`) matches.
    func matches(_ address: NormalisedAddress) -> Bool {
        guard let parts else { return true }
        guard let domain = address.domain else { return false }
        switch parts.local {
        case .any: break
        case let .exact(text): if address.local != text { return false }
        }
        switch parts.domain {
        case .any: return true
        case let .exact(text): return domain == text
        case let .subdomain(of: text):
            return domain.count > text.count + 1 && domain.hasSuffix("." + text)
        }
    }

    /// Parses a pattern; throws `ValueProblem`.
    static func parse(_ text: Substring) throws -> AddressPattern {
        let lower = text.lowercased()
        if lower == "*" { return .anything }
        guard let at = lower.lastIndex(of: "@") else {
            throw ValueProblem("bad pattern \(quoted(text)) (expected user@domain, *@domain, *@*.domain or *)")
        }
        let localText = lower[..<at]
        let domainText = lower[lower.index(after: at)...]
        guard !localText.isEmpty, !domainText.isEmpty else {
            throw ValueProblem("bad pattern \(quoted(text)) (expected user@domain, *@domain, *@*.domain or *)")
        }
        let local: LocalPart
        if localText == "*" {
            local = .any
        } else if localText.contains("*") {
            throw ValueProblem("bad pattern \(quoted(text)) (* may only stand for the whole user part)")
        } else {
            local = .exact(String(localText))
        }
        let domain: DomainPart
        if domainText == "*" {
            domain = .any
        } else if domainText.hasPrefix("*.") {
            let rest = domainText.dropFirst(2)
            try checkDomain(rest, in: text)
            domain = .subdomain(of: String(rest))
        } else {
            try checkDomain(domainText, in: text)
            domain = .exact(String(domainText))
        }
        return AddressPattern(parts: (local, domain))
    }

    private static func checkDomain(_ domain: Substring, in text: Substring) throws {
        if domain.isEmpty || domain.contains("*") || domain.contains("@") {
            throw ValueProblem("bad pattern \(quoted(text)) (* may only stand for the whole domain or a leading *.)")
        }
        if domain.hasPrefix(".") || domain.hasSuffix(".") || domain.contains("..") {
            throw ValueProblem("bad domain in pattern \(quoted(text)) (for subdomains write *@*.example.com)")
        }
    }
}

/// An address prepared for table look-ups: trimmed, `<>` removed, lower case, split at the last `@`.
struct NormalisedAddress: Sendable, Equatable {
    /// The whole address, lower case.
    let full: String
    /// The part before the last `@` (the whole text when there is no `@`).
    let local: Substring
    /// The part after the last `@`, or nil when there is no `@`.
    let domain: Substring?

    init(_ text: String) {
        var s = trimBlanks(Substring(text))
        if s.hasPrefix("<"), s.hasSuffix(">"), s.count >= 2 {
            s = trimBlanks(s.dropFirst().dropLast())
        }
        let full = s.lowercased()
        self.full = full
        if let at = full.lastIndex(of: "@") {
            local = full[..<at]
            domain = full[full.index(after: at)...]
        } else {
            local = full[...]
            domain = nil
        }
    }
}

/// The check every first-match-wins address table makes while it is parsed: a rule that can
/// never match (its pattern repeated from an earlier line, or any rule after a `*` catch-all)
/// is an error, because an administrator who wrote it expected it to apply.
struct UnreachableRuleCheck {
    private var firstLine: [AddressPattern: Int] = [:]
    private var catchAllLine: Int?

    /// Admits `pattern` from table line `line`, or throws why that rule could never match.
    mutating func admit(_ pattern: AddressPattern, line: Int) throws {
        if let earlier = catchAllLine {
            throw ValueProblem("this rule can never match: the catch-all * on line \(earlier) comes first")
        }
        if let earlier = firstLine[pattern] {
            throw ValueProblem("pattern \(pattern) already appears on line \(earlier) (the first matching line wins, so this one can never match)")
        }
        firstLine[pattern] = line
        if pattern == .anything { catchAllLine = line }
    }
}
