// SPDX-License-Identifier: Apache-2.0
/// What the encryption table says about mail to one recipient.
public enum EncryptionClass: String, Sendable, Equatable, CaseIterable {
    /// Encrypt when every recipient of the message has a usable certificate; else plaintext.
    case encrypt
    /// This recipient never gets plaintext: without a usable certificate the message is
    /// refused (`OnMissingRecipientCertificate`).
    case require
    /// Never encrypt mail to this recipient.
    case never
}

/// How mail to a recipient is signed, by the encryption table's `sign=` option.
public enum RecipientSigning: String, Sendable, Equatable, CaseIterable {
    /// As the SigningTable says for the sender (the default when a line has no `sign=`).
    case asConfigured = "default"
    /// multipart/signed.
    case detached
    /// application/pkcs7-mime signed-data.
    case opaque
    /// Not signed (webmail that shows S/MIME as an error).
    case skip
}

/// One line of the encryption table.
public struct EncryptionTableRule: Sendable, Equatable {
    /// The recipient pattern in the first column (the SigningTable's pattern syntax).
    public let pattern: AddressPattern
    public let encryption: EncryptionClass
    public let signing: RecipientSigning
    /// The 1-based line in the table file.
    public let line: Int
}

/// The `EncryptionTable`: whether mail to a recipient is encrypted, and how it is signed.
///
/// One rule per line, `#` comments, case-insensitive, first match wins:
///
///     PATTERN  encrypt|require|never  [sign=detached|opaque|skip]
///
/// `PATTERN` is `user@domain`, `*@domain`, `*@*.domain`, `user@*` or `*` (see `AddressPattern`).
/// A recipient no line matches is sent as before (no encryption, signing as configured).
public struct EncryptionTable: Sendable, Equatable {
    public let file: String
    public let rules: [EncryptionTableRule]

    public init(file: String, rules: [EncryptionTableRule]) {
        self.file = file
        self.rules = rules
    }

    /// The first rule matching `address` (optionally in `<>`), or nil.
    public func match(_ address: String) -> EncryptionTableRule? {
        let normalised = NormalisedAddress(address)
        return rules.first { $0.pattern.matches(normalised) }
    }

    /// Parses table text; errors carry `file` and the line. As in the SigningTable, a repeated
    /// pattern and any line after a `*` catch-all are errors (they could never match).
    public static func parse(contents: String, file: String) throws -> EncryptionTable {
        var rules: [EncryptionTableRule] = []
        var reachable = UnreachableRuleCheck()
        for line in meaningfulLines(of: contents) {
            do {
                let fields = line.fields
                guard fields.count >= 2 else { throw ValueProblem("expected PATTERN encrypt|require|never [sign=detached|opaque|skip]") }
                let pattern = try AddressPattern.parse(fields[0])
                let encryption: EncryptionClass
                do {
                    encryption = try ValueParsers.choice(fields[1], EncryptionClass.self)
                } catch let problem as ValueProblem {
                    throw ValueProblem("\(quoted(fields[1])): \(problem.reason)")
                }
                var signing = RecipientSigning.asConfigured
                var seenSign = false
                for field in fields.dropFirst(2) {
                    let parts = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    guard parts.count == 2, parts[0].lowercased() == "sign" else {
                        throw ValueProblem("unexpected \(quoted(field)) (the only option is sign=detached|opaque|skip)")
                    }
                    guard !seenSign else { throw ValueProblem("sign= given twice") }
                    seenSign = true
                    guard let value = RecipientSigning(rawValue: parts[1].lowercased()), value != .asConfigured else {
                        throw ValueProblem("bad value for sign: \(quoted(parts[1])) (expected detached, opaque or skip)")
                    }
                    signing = value
                }
                try reachable.admit(pattern, line: line.number)
                rules.append(EncryptionTableRule(pattern: pattern, encryption: encryption, signing: signing, line: line.number))
            } catch let problem as ValueProblem {
                throw ConfigurationError(file: file, line: line.number, message: problem.reason)
            }
        }
        return EncryptionTable(file: file, rules: rules)
    }
}

extension EncryptionTable: TableFile {}
