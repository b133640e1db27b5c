// SPDX-License-Identifier: Apache-2.0
/// Which jobs the milter does (`Mode`): any non-empty combination of sign and verify.
public struct OperatingMode: OptionSet, Sendable, Hashable, CustomStringConvertible {
    /// Bit 0 is sign, bit 1 is verify.
    public let rawValue: UInt8
    /// A mode from its bits (see `rawValue`).
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Sign outbound mail (letter `s`).
    public static let sign = OperatingMode(rawValue: 1)
    /// Verify inbound mail (letter `v`).
    public static let verify = OperatingMode(rawValue: 2)

    /// The letters as written in the configuration: `s`, `v` or `sv`.
    public var description: String {
        (contains(.sign) ? "s" : "") + (contains(.verify) ? "v" : "")
    }

    /// Parses `s`, `v`, `sv` or `vs` (case-insensitive); throws `ValueProblem`.
    static func parse(_ text: some StringProtocol) throws -> OperatingMode {
        var mode: OperatingMode = []
        guard !text.isEmpty, text.count <= 2 else { throw ValueProblem("expected s, v or sv") }
        for c in text.lowercased() {
            let letter: OperatingMode
            switch c {
            case "s": letter = .sign
            case "v": letter = .verify
            default: throw ValueProblem("expected s, v or sv")
            }
            guard !mode.contains(letter) else { throw ValueProblem("expected s, v or sv") }
            mode.insert(letter)
        }
        return mode
    }
}

/// What the MTA is told when a message cannot be processed (`OnError`).
public enum OnErrorAction: String, Sendable, Equatable, CaseIterable {
    /// Ask the MTA to retry later (4xx): no mail leaves unsigned by accident. The default.
    case tempfail
    /// Let the message through unchanged.
    case accept
}

/// How much is logged (`LogLevel`); each level includes the ones before it.
public enum LogLevel: String, Sendable, Equatable, Comparable, CaseIterable {
    /// Only failures: messages not processed, configuration problems.
    case error
    /// Also problems that do not stop processing (an identity refused at start, say).
    case warning
    /// Also noteworthy decisions, such as a sender not allowed to use its From address.
    case notice
    /// Also one line per message. The default.
    case info
    /// Also details for troubleshooting.
    case debug

    private var rank: Int {
        switch self {
        case .error: return 0
        case .warning: return 1
        case .notice: return 2
        case .info: return 3
        case .debug: return 4
        }
    }

    /// `error < warning < notice < info < debug`.
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

/// The user (and optionally group) to run as (`UserID`), as names or numbers; resolved at start.
public struct UserSpec: Sendable, Equatable, CustomStringConvertible {
    /// User name or numeric uid.
    public let user: String
    /// Group name or numeric gid; nil means the user's primary group.
    public let group: String?

    /// A user, and optionally a group, by name or number.
    public init(user: String, group: String?) {
        self.user = user
        self.group = group
    }

    /// `user` or `user:group`.
    public var description: String { group.map { "\(user):\($0)" } ?? user }

    /// Parses `user[:group]`; throws `ValueProblem`.
    static func parse(_ text: some StringProtocol) throws -> UserSpec {
        let parts = Substring(text).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, parts.allSatisfy(isAccountName) else {
            throw ValueProblem("expected user or user:group (names or numbers)")
        }
        return UserSpec(user: String(parts[0]), group: parts.count == 2 ? String(parts[1]) : nil)
    }

    /// POSIX portable user/group names (plus the `$` Samba machine accounts end with).
    private static func isAccountName(_ name: Substring) -> Bool {
        guard !name.isEmpty, name.count <= 64, name.first != "-" else { return false }
        return name.enumerated().allSatisfy { index, c in
            c.isASCII && (c.isLetter || c.isNumber || c == "_" || c == "." || c == "-"
                || (c == "$" && index == name.count - 1))
        }
    }
}
