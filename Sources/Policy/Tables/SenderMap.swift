// SPDX-License-Identifier: Apache-2.0
/// The `SenderMap`: who may send mail with which From address.
///
/// File format (like Postfix's `smtpd_sender_login_maps`), one entry per line, `#` comments:
///
///     ADDRESS-or-@DOMAIN   NAME[,NAME...]
///
/// Keys are `user@example.com` or `@example.com`; names are separated by commas and/or blanks.
/// A look-up uses the exact address entry if there is one, else the `@domain` entry (the exact
/// entry replaces the domain entry; it does not add to it). Everything is case-insensitive.
///
/// The names are SASL login names, or envelope sender addresses for mail that has no SASL
/// login (local submission, trusted relays). See `allows(login:address:)` and
/// `allows(envelopeSender:address:)`.
public struct SenderMap: Sendable, Equatable {
    /// One line of the map.
    public struct Entry: Sendable, Equatable {
        /// The key, lower case: `user@domain` or `@domain`.
        public let key: String
        /// The allowed names (logins or envelope senders), lower case, in file order.
        public let names: [String]
        /// The 1-based line number in the file, for log lines.
        public let line: Int
    }

    /// The file the map was read from (resolved path), for messages.
    public let file: String
    /// Entries by lower-case key.
    public let entries: [String: Entry]

    /// A map of already parsed entries (keys must be lower case).
    public init(file: String, entries: [String: Entry]) {
        self.file = file
        self.entries = entries
    }

    /// The entry that governs `address`: the exact address entry, else its `@domain` entry.
    public func entry(for address: String) -> Entry? {
        let normalised = NormalisedAddress(address)
        guard let domain = normalised.domain, !domain.isEmpty, !normalised.local.isEmpty else {
            return nil
        }
        return entries[normalised.full] ?? entries["@" + domain]
    }

    /// The names allowed to use `address`; empty when the map has no entry for it.
    public func allowedLogins(for address: String) -> [String] {
        entry(for: address)?.names ?? []
    }

    /// Whether the SASL user `login` may send mail with From `address`:
    /// the governing entry for `address` lists `login`.
    public func allows(login: String, address: String) -> Bool {
        let name = trimBlanks(Substring(login)).lowercased()
        guard !name.isEmpty else { return false }
        return allowedLogins(for: address).contains(name)
    }

    /// Whether mail without a SASL login and with envelope sender `envelopeSender` may use
    /// From `address`: yes when both are the same address, or when the governing entry for
    /// `address` lists `envelopeSender`. Only names containing `@` count as envelope senders,
    /// so a listed login name never doubles as one; a null sender (`<>`) is never allowed.
    public func allows(envelopeSender: String, address: String) -> Bool {
        let sender = NormalisedAddress(envelopeSender)
        guard let domain = sender.domain, !domain.isEmpty, !sender.local.isEmpty else { return false }
        if sender.full == NormalisedAddress(address).full { return true }
        return allowedLogins(for: address).contains(sender.full)
    }
}

extension SenderMap {
    /// Parses sender map text. Errors carry `file` and the line number; a key given twice is an error.
    public static func parse(contents: String, file: String) throws -> SenderMap {
        var entries: [String: Entry] = [:]
        for line in meaningfulLines(of: contents) {
            do {
                guard let keyEnd = line.text.firstIndex(where: isBlank) else {
                    throw ValueProblem("expected ADDRESS-or-@DOMAIN LOGIN[,LOGIN...]")
                }
                let keyText = line.text[..<keyEnd]
                let key = try parseKey(keyText)
                let names = listItems(line.text[keyEnd...]).map { $0.lowercased() }
                guard !names.isEmpty else {
                    throw ValueProblem("expected ADDRESS-or-@DOMAIN LOGIN[,LOGIN...]")
                }
                if let earlier = entries[key] {
                    throw ValueProblem("duplicate entry for \(key) (first on line \(earlier.line))")
                }
                entries[key] = Entry(key: key, names: names, line: line.number)
            } catch let problem as ValueProblem {
                throw ConfigurationError(file: file, line: line.number, message: problem.reason)
            }
        }
        return SenderMap(file: file, entries: entries)
    }


    private static func parseKey(_ text: Substring) throws -> String {
        let key = text.lowercased()
        guard let at = key.lastIndex(of: "@") else {
            throw ValueProblem("bad key \(quoted(text)) (expected user@domain or @domain)")
        }
        let domain = key[key.index(after: at)...]
        guard !domain.isEmpty, !domain.contains("*"), !key[..<at].contains("*"),
              !domain.hasPrefix("."), !domain.hasSuffix(".") else {
            throw ValueProblem("bad key \(quoted(text)) (expected user@domain or @domain; wildcards are not supported)")
        }
        return key
    }
}

extension SenderMap: TableFile {}
