// SPDX-License-Identifier: Apache-2.0
/// What the decryption table says about encrypted mail to one recipient.
public enum DecryptionClass: String, Sendable, Equatable, CaseIterable {
    /// Decrypt at the gateway with the identity whose certificate the envelope names.
    case decrypt
    /// Leave it encrypted; only say so in the headers.
    case keep
}

/// One line of the decryption table.
public struct DecryptionTableRule: Sendable, Equatable {
    /// The recipient pattern (the SigningTable's pattern syntax).
    public let pattern: AddressPattern
    public let decryption: DecryptionClass
    /// The 1-based line in the table file.
    public let line: Int
}

/// The `DecryptionTable`: whether inbound encrypted mail to a recipient is decrypted here.
///
/// One rule per line, `#` comments, case-insensitive, first match wins:
///
///     PATTERN  decrypt|keep
///
/// `PATTERN` is `user@domain`, `*@domain`, `*@*.domain`, `user@*` or `*` (see `AddressPattern`).
/// A recipient no line matches is treated as before (the message stays encrypted, no header).
public struct DecryptionTable: Sendable, Equatable {
    public let file: String
    public let rules: [DecryptionTableRule]

    public init(file: String, rules: [DecryptionTableRule]) {
        self.file = file
        self.rules = rules
    }

    /// The first rule matching `address` (optionally in `<>`), or nil.
    public func match(_ address: String) -> DecryptionTableRule? {
        let normalised = NormalisedAddress(address)
        return rules.first { $0.pattern.matches(normalised) }
    }

    /// Parses table text; errors carry `file` and the line. A repeated pattern and any line
    /// after a `*` catch-all are errors (they could never match), as in the other tables.
    public static func parse(contents: String, file: String) throws -> DecryptionTable {
        var rules: [DecryptionTableRule] = []
        var reachable = UnreachableRuleCheck()
        for line in meaningfulLines(of: contents) {
            do {
                let fields = line.fields
                guard fields.count == 2 else { throw ValueProblem("expected PATTERN decrypt|keep") }
                let pattern = try AddressPattern.parse(fields[0])
                let decryption: DecryptionClass
                do {
                    decryption = try ValueParsers.choice(fields[1], DecryptionClass.self)
                } catch let problem as ValueProblem {
                    throw ValueProblem("\(quoted(fields[1])): \(problem.reason)")
                }
                try reachable.admit(pattern, line: line.number)
                rules.append(DecryptionTableRule(pattern: pattern, decryption: decryption, line: line.number))
            } catch let problem as ValueProblem {
                throw ConfigurationError(file: file, line: line.number, message: problem.reason)
            }
        }
        return DecryptionTable(file: file, rules: rules)
    }
}

extension DecryptionTable: TableFile {}
