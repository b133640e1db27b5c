// SPDX-License-Identifier: Apache-2.0
/// A list of IP addresses and networks, such as `InternalHosts`.
///
/// Entries are IPv4 or IPv6 addresses, optionally with a `/prefix` (CIDR), optionally negated
/// with a leading `!` (as in OpenDKIM): `127.0.0.1, ::1, 10.0.0.0/8, !10.9.0.0/16`.
///
/// Matching: the most specific matching entry (longest prefix) decides, so
/// `10.0.0.0/8, !10.9.0.0/16` covers 10.x except 10.9.x; at equal length a negated entry wins.
/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are treated as the IPv4 address they carry,
/// both as entries and when looked up; other IPv6 networks (even `::/0`) never cover IPv4.
public struct NetworkList: Sendable, Equatable, CustomStringConvertible {
    /// One address or network of the list.
    public struct Entry: Sendable, Equatable, CustomStringConvertible {
        /// Network-order bytes: 4 for IPv4, 16 for IPv6. Host bits beyond the prefix are zero.
        public let bytes: [UInt8]
        /// Number of leading bits that must match: 0...32 for IPv4, 0...128 for IPv6.
        public let prefixLength: Int
        /// A negated entry (`!`) excludes the addresses it covers.
        public let negated: Bool

        /// True for an IPv4 entry.
        public var isIPv4: Bool { bytes.count == 4 }

        /// The entry as it can be written in the configuration, e.g. `!10.0.0.0/8`, `::1`.
        public var description: String {
            let address = IPAddress.format(bytes)
            let full = bytes.count * 8
            return (negated ? "!" : "") + address + (prefixLength == full ? "" : "/\(prefixLength)")
        }

        /// Whether `address` (network-order bytes of the same family) lies inside this network.
        func covers(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            var bits = prefixLength
            for i in 0..<bytes.count where bits > 0 {
                let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
                if (address[i] & mask) != bytes[i] { return false }
                bits -= 8
            }
            return true
        }
    }

    /// The entries in the order written.
    public let entries: [Entry]
    /// The file the entries were read from, or nil when they were given inline.
    public let sourceFile: String?

    /// A list of already parsed entries.
    public init(entries: [Entry], sourceFile: String? = nil) {
        self.entries = entries
        self.sourceFile = sourceFile
    }

    /// The default `InternalHosts`: the loopback addresses 127.0.0.1 and ::1.
    public static let loopback = NetworkList(entries: [
        Entry(bytes: [127, 0, 0, 1], prefixLength: 32, negated: false),
        Entry(bytes: [UInt8](repeating: 0, count: 15) + [1], prefixLength: 128, negated: false),
    ])

    /// The file name when read from a file, else the entries separated by `, `.
    public var description: String {
        sourceFile ?? entries.map(\.description).joined(separator: ", ")
    }

    /// Whether `address` is covered by the list (see the type's documentation for the rules).
    ///
    /// Accepts `1.2.3.4`, `2001:db8::1`, `::ffff:1.2.3.4`, bracketed `[::1]`, `IPv6:` prefixes
    /// (as in Postfix/Sendmail macros) and zone ids (`fe80::1%eth0`, zone ignored).
    /// Anything that is not a numeric address is not contained.
    public func contains(_ address: String) -> Bool {
        guard let bytes = NetworkList.addressBytes(address) else { return false }
        var best: Entry?
        for entry in entries where entry.covers(bytes) {
            if let current = best {
                if entry.prefixLength > current.prefixLength
                    || (entry.prefixLength == current.prefixLength && entry.negated && !current.negated) {
                    best = entry
                }
            } else {
                best = entry
            }
        }
        guard let best else { return false }
        return !best.negated
    }

    /// Network-order bytes of a client address as MTAs report it; IPv4-mapped IPv6 becomes IPv4.
    static func addressBytes(_ text: String) -> [UInt8]? {
        var s = trimBlanks(Substring(text))
        if s.hasPrefix("["), s.hasSuffix("]"), s.count >= 2 {
            s = s.dropFirst().dropLast()
        }
        if s.utf8.count >= 5, s.prefix(5).lowercased() == "ipv6:" {
            s = s.dropFirst(5)
        }
        if let percent = s.firstIndex(of: "%") {
            s = s[..<percent]
        }
        if s.utf8.contains(UInt8(ascii: ":")) {   // not Foundation's substring search: per message
            guard let v6 = IPAddress.v6(s) else { return nil }
            return IPAddress.unmapped(v6) ?? v6
        }
        return IPAddress.v4(s)
    }
}

extension NetworkList {
    /// Parses an inline list: entries separated by commas and/or blanks.
    ///
    /// Throws a `ValueProblem` naming the first bad entry.
    static func parse(list: some StringProtocol) throws -> NetworkList {
        let items = listItems(list)
        guard !items.isEmpty else { throw ValueProblem("expected addresses or networks") }
        return NetworkList(entries: try items.map(parseEntry))
    }

    /// Parses the contents of a network list file: one or more entries per line, `#` comments.
    ///
    /// Errors carry `file` and the line number.
    public static func parse(contents: String, file: String) throws -> NetworkList {
        var entries: [Entry] = []
        for line in meaningfulLines(of: contents) {
            for item in listItems(line.text) {
                do {
                    entries.append(try parseEntry(item))
                } catch let problem as ValueProblem {
                    throw ConfigurationError(file: file, line: line.number, message: problem.reason)
                }
            }
        }
        return NetworkList(entries: entries, sourceFile: file)
    }


    /// Parses one entry: `[!]ADDRESS[/PREFIX]`.
    static func parseEntry(_ item: Substring) throws -> Entry {
        var text = item
        let negated = text.hasPrefix("!")
        if negated { text = text.dropFirst() }
        var addressText = text
        var prefixText: Substring?
        if let slash = text.firstIndex(of: "/") {
            addressText = text[..<slash]
            prefixText = text[text.index(after: slash)...]
        }
        if addressText.hasPrefix("["), addressText.hasSuffix("]"), addressText.count >= 2 {
            addressText = addressText.dropFirst().dropLast()
        }
        var bytes: [UInt8]
        if addressText.contains(":") {
            guard let v6 = IPAddress.v6(addressText) else {
                throw ValueProblem("bad IPv6 address \(quoted(item))")
            }
            bytes = v6
        } else {
            guard let v4 = IPAddress.v4(addressText) else {
                throw ValueProblem("bad address or network \(quoted(item)) (expected e.g. 192.0.2.1, 10.0.0.0/8, ::1 or 2001:db8::/32; host names are not supported)")
            }
            bytes = v4
        }
        let maximum = bytes.count * 8
        var prefix = maximum
        if let prefixText {
            guard !prefixText.isEmpty, prefixText.count <= 3, prefixText.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = Int(prefixText), value <= maximum else {
                throw ValueProblem("bad prefix length in \(quoted(item)) (expected 0 to \(maximum))")
            }
            prefix = value
        }
        // An entry inside ::ffff:0:0/96 is about IPv4 clients: store it as IPv4 so it matches them.
        if let v4 = IPAddress.unmapped(bytes), prefix >= 96 {
            bytes = v4
            prefix -= 96
        }
        let entry = Entry(bytes: masked(bytes, prefix), prefixLength: prefix, negated: negated)
        if entry.bytes != bytes {
            // Like Postfix: "10.1.2.3/8" is almost always a typo for a different network.
            let suggestion = Entry(bytes: entry.bytes, prefixLength: prefix, negated: negated)
            throw ValueProblem("\(quoted(item)) has host bits set beyond /\(prefix) (did you mean \(suggestion)?)")
        }
        return entry
    }

    /// `bytes` with every bit after the first `prefix` bits cleared.
    static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        var out = bytes
        var bits = prefix
        for i in 0..<out.count {
            if bits >= 8 {
                bits -= 8
            } else {
                out[i] &= bits > 0 ? ~(0xFF >> UInt8(bits)) : 0
                bits = 0
            }
        }
        return out
    }
}

extension NetworkList: TableFile {}
