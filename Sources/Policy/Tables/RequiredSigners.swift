// SPDX-License-Identifier: Apache-2.0
/// The `RequireSignature` list: senders known to sign all their mail (a bank, a ministry).
///
/// File format, one entry per line, `#` comments, blank lines ignored:
///
///     alerts@bank.example      # exactly this address
///     @ministry.example        # every address at exactly this domain (not its subdomains)
///
/// Everything is case-insensitive. A sender is listed when its address or its `@domain` is;
/// an entry given twice is harmless and accepted.
public struct RequiredSigners: Sendable, Equatable {
    /// The file the list was read from (resolved path), for messages and `describe()`.
    public let file: String
    /// The listed addresses, lower case.
    public let addresses: Set<String>
    /// The listed domains (without `@`), lower case.
    public let domains: Set<String>

    /// A list of already normalised (lower-case) entries.
    public init(file: String, addresses: Set<String>, domains: Set<String>) {
        self.file = file
        self.addresses = addresses
        self.domains = domains
    }

    /// The number of distinct entries.
    public var count: Int { addresses.count + domains.count }

    /// The entry that lists `address` (`user@domain` or `@domain`), or nil when it is not listed.
    public func entry(for address: String) -> String? {
        let normalised = NormalisedAddress(address)
        guard let domain = normalised.domain, !domain.isEmpty, !normalised.local.isEmpty else { return nil }
        if addresses.contains(normalised.full) { return normalised.full }
        if domains.contains(String(domain)) { return "@" + domain }
        return nil
    }

    /// Whether mail from `address` must carry a passing signature.
    public func requires(_ address: String) -> Bool {
        entry(for: address) != nil
    }
}

extension RequiredSigners {
    /// Parses list text that came from `file`; errors carry the file and line number.
    public static func parse(contents: String, file: String) throws -> RequiredSigners {
        var addresses: Set<String> = []
        var domains: Set<String> = []
        for line in meaningfulLines(of: contents) {
            do {
                let fields = line.fields
                guard fields.count == 1, let entry = fields.first else {
                    throw ValueProblem("expected one address or @domain per line, got \(quoted(line.text))")
                }
                let lower = entry.lowercased()
                guard let at = lower.lastIndex(of: "@") else {
                    throw ValueProblem("bad entry \(quoted(entry)) (expected user@domain or @domain)")
                }
                let local = lower[..<at]
                let domain = lower[lower.index(after: at)...]
                try checkDomain(domain, entry: entry)
                guard !local.contains("@"), !local.contains("*"), !local.contains("<"), !local.contains(">") else {
                    throw ValueProblem("bad entry \(quoted(entry)) (expected user@domain or @domain; no wildcards or <>)")
                }
                if local.isEmpty {
                    domains.insert(String(domain))
                } else {
                    addresses.insert(lower)
                }
            } catch let problem as ValueProblem {
                throw ConfigurationError(file: file, line: line.number, message: problem.reason)
            }
        }
        return RequiredSigners(file: file, addresses: addresses, domains: domains)
    }


    /// A domain as written in mail addresses: dot-separated labels, no wildcards.
    private static func checkDomain(_ domain: Substring, entry: Substring) throws {
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        let valid = !domain.isEmpty && domain.utf8.count <= 255 && labels.allSatisfy { label in
            !label.isEmpty && label.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        }
        guard valid else {
            throw ValueProblem("bad domain in \(quoted(entry)) (expected user@domain or @domain, e.g. @bank.example; subdomains must be listed one by one)")
        }
    }
}

/// What happens to mail from a `RequireSignature` sender that has no passing signature
/// (`OnMissingSignature`).
public enum MissingSignatureAction: String, Sendable, Equatable, CaseIterable {
    /// Deliver it with a Subject tag: `SubjectTagFail`, or `[UNVERIFIED]` when that is empty.
    /// The default.
    case tag
    /// Accept it into the MTA's hold queue (Postfix `postqueue -p` shows it with `!`), where an
    /// administrator releases (`postsuper -H`) or deletes it.
    case quarantine
    /// Refuse it during the SMTP dialogue with `550 5.7.1` and a text saying why.
    case reject
    /// Deliver it like any other mail (the Authentication-Results header still tells).
    case accept
}

extension RequiredSigners: TableFile {}

/// `OnRevocationUnknown`: what a valid signature gets when the revocation status of its chain
/// cannot be found.
public enum RevocationUnknownAction: String, Sendable, Equatable, CaseIterable {
    /// The result stands (the comment says the status is unknown).
    case accept
    /// `smime=policy`.
    case policy
    /// `smime=temperror`, and the message is tempfailed (451 4.7.5).
    case tempfail
}
