// SPDX-License-Identifier: Apache-2.0
/// What the signing table says about one sender.
public enum SigningTableEntry: Sendable, Equatable {
    /// Sign with the identity of this name (from `CertificateDir`) in this form.
    case sign(identity: String, form: SignatureForm)
    /// Do not sign mail from this sender.
    case skip
}

/// One line of the signing table.
public struct SigningTableRule: Sendable, Equatable {
    /// The sender pattern in the first column.
    public let pattern: AddressPattern
    /// What to do for senders the pattern matches.
    public let entry: SigningTableEntry
    /// `key=value` options after the identity (or after `skip`).
    public let options: SigningOptions
    /// The 1-based line number in the table file, for log lines.
    public let line: Int
}

/// The `SigningTable`: which identity signs mail from which sender.
///
/// File format, one rule per line, `#` comments, case-insensitive:
///
///     PATTERN  IDENTITY  [detached|opaque]  [key=value ...]
///     PATTERN  skip  [OnBrokenSignature=strip|keep]
///
/// `PATTERN` is `user@domain`, `*@domain`, `*@*.domain` (subdomains only) or `*` (anything);
/// see `AddressPattern`. `IDENTITY` names an identity in `CertificateDir`; the form defaults to
/// `detached`. The first matching line wins, so put specific rules before general ones.
/// An identity cannot be called `skip`, `detached` or `opaque`.
public struct SigningTable: Sendable, Equatable {
    /// The file the table was read from (resolved path), for messages.
    public let file: String
    /// The rules in file order.
    public let rules: [SigningTableRule]

    /// A table of already parsed rules.
    public init(file: String, rules: [SigningTableRule]) {
        self.file = file
        self.rules = rules
    }

    /// The first rule matching `address` (`user@domain`, optionally in `<>`), or nil.
    public func match(_ address: String) -> SigningTableRule? {
        let normalised = NormalisedAddress(address)
        return rules.first { $0.pattern.matches(normalised) }
    }

    /// What the first matching rule says about `address`, or nil when no rule matches.
    public func lookup(_ address: String) -> SigningTableEntry? {
        match(address)?.entry
    }
}

extension SigningTable {
    /// Parses signing table text. Errors carry `file` and the line number.
    ///
    /// Besides malformed lines, rules that can never match are errors: a pattern repeated from an
    /// earlier line, and any rule after a `*` catch-all.
    public static func parse(contents: String, file: String) throws -> SigningTable {
        var rules: [SigningTableRule] = []
        var reachable = UnreachableRuleCheck()
        for line in meaningfulLines(of: contents) {
            do {
                let rule = try parseRule(line)
                try reachable.admit(rule.pattern, line: line.number)
                rules.append(rule)
            } catch let problem as ValueProblem {
                throw ConfigurationError(file: file, line: line.number, message: problem.reason)
            }
        }
        return SigningTable(file: file, rules: rules)
    }


    private static func parseRule(_ line: TextLine) throws -> SigningTableRule {
        let fields = line.fields
        guard fields.count >= 2 else {
            throw ValueProblem("expected PATTERN IDENTITY [detached|opaque] or PATTERN skip")
        }
        let pattern = try AddressPattern.parse(fields[0])
        let second = fields[1].lowercased()
        if second == "skip" {
            var options = SigningOptions()
            var seenOptions: Set<String> = []
            for field in fields.dropFirst(2) {
                guard field.contains("=") else {
                    throw ValueProblem("nothing may follow skip except OnBrokenSignature=strip|keep (found \(quoted(field)))")
                }
                try applyOption(field, to: &options, seen: &seenOptions)
            }
            if options.onBrokenSignature == .resign {
                throw ValueProblem("OnBrokenSignature=resign needs an identity, and a skip line has none (use strip or keep)")
            }
            return SigningTableRule(pattern: pattern, entry: .skip, options: options, line: line.number)
        }
        if SignatureForm(rawValue: second) != nil {
            throw ValueProblem("missing identity before \(quoted(fields[1]))")
        }
        if fields[1].contains("=") {
            throw ValueProblem("missing identity before option \(quoted(fields[1]))")
        }
        let identity = String(fields[1])
        guard !identity.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ValueProblem("control characters are not allowed in an identity name")
        }
        var form: SignatureForm?
        var options = SigningOptions()
        var seenOptions: Set<String> = []
        for field in fields.dropFirst(2) {
            if field.contains("=") {
                try applyOption(field, to: &options, seen: &seenOptions)
            } else if let parsed = SignatureForm(rawValue: field.lowercased()) {
                guard form == nil else {
                    throw ValueProblem("the signature form is given twice")
                }
                form = parsed
            } else {
                throw ValueProblem("unexpected \(quoted(field)) after the identity (expected detached, opaque or key=value)")
            }
        }
        return SigningTableRule(
            pattern: pattern,
            entry: .sign(identity: identity, form: form ?? .detached),
            options: options,
            line: line.number
        )
    }

    /// Applies one `key=value` option (case-insensitive key) or throws with the known options.
    private static func applyOption(_ field: Substring, to options: inout SigningOptions, seen: inout Set<String>) throws {
        guard let equals = field.firstIndex(of: "=") else { return }
        let name = field[..<equals]
        let value = field[field.index(after: equals)...]
        guard let spec = SigningOptionSpec.named(name) else {
            let known = SigningOptionSpec.all.map(\.name)
            let hint = known.isEmpty ? "no options are defined yet" : "known options: " + known.joined(separator: ", ")
            throw ValueProblem("unknown option \(quoted(name)) (\(hint))")
        }
        guard seen.insert(spec.name).inserted else {
            throw ValueProblem("option \(spec.name) given twice")
        }
        do {
            try spec.apply(value, &options)
        } catch let problem as ValueProblem {
            throw ValueProblem("bad value for option \(spec.name): \(quoted(value)) (\(problem.reason))")
        }
    }
}

extension SigningTable: TableFile {}
