// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Keys for running the milter in production: logging, certificate lifecycle, metrics.
extension ConfigurationKey {
    static let operations: [ConfigurationKey] = [
        ConfigurationKey(
            name: "Syslog",
            syntax: "yes | no",
            defaultValue: "no",
            doc: "Log through syslog(3) instead of standard error (under systemd, standard error already goes to the journal).",
            apply: { value, _, config in config.process.syslog = try ValueParsers.boolean(value) },
            show: { $0.process.syslog ? "yes" : "no" }
        ),
        ConfigurationKey(
            name: "SyslogFacility",
            syntax: "mail | daemon | local0 ... local7",
            defaultValue: "mail",
            doc: "The syslog facility used when Syslog is yes.",
            apply: { value, _, config in config.process.syslogFacility = try ValueParsers.choice(value, SyslogFacility.self) },
            show: { $0.process.syslogFacility.rawValue }
        ),
        ConfigurationKey(
            name: "ExpiryWarnDays",
            syntax: "DAYS[,DAYS...]",
            defaultValue: "30,14,7,1",
            doc: "Warn in the log (and by ExpiryReport mail) when a signing certificate expires within each of these many days; checked at start, on reload and daily.",
            apply: { value, _, config in config.expiryWarnDays = try ValueParsers.dayList(value) },
            show: { $0.expiryWarnDays.map(String.init).joined(separator: ",") }
        ),
        ConfigurationKey(
            name: "ExpiryReport",
            syntax: "ADDRESS",
            defaultValue: "none",
            doc: "Mail expiry warnings to this address through SendmailCommand, once per threshold per identity.",
            apply: { value, _, config in config.expiryReport = try ValueParsers.mailAddress(value) },
            show: { $0.expiryReport }
        ),
        ConfigurationKey(
            name: "OnExpiredCertificate",
            syntax: "unsigned | tempfail",
            defaultValue: "unsigned",
            doc: "Mail from a sender whose certificate has expired: unsigned sends it on unsigned with a log line, tempfail makes the MTA keep it until a new certificate is installed; it is never signed with an expired certificate.",
            apply: { value, _, config in config.onExpiredCertificate = try ValueParsers.choice(value, ExpiredCertificateAction.self) },
            show: { $0.onExpiredCertificate.rawValue }
        ),
        ConfigurationKey(
            name: "MetricsListen",
            syntax: "PORT | ADDRESS:PORT | [ADDRESS]:PORT",
            defaultValue: "none",
            doc: "Serve Prometheus metrics over HTTP at /metrics on this address; a port alone means 127.0.0.1 (loopback); a wildcard or other non-loopback address is warned at each start. The metrics show counts, timings and identity names, never key material.",
            apply: { value, _, config in config.process.metricsListen = try MetricsEndpoint.parse(value) },
            show: { $0.process.metricsListen?.description }
        ),
        ConfigurationKey(
            name: "SendmailCommand",
            syntax: "PATH",
            defaultValue: "/usr/sbin/sendmail",
            doc: "The local sendmail command used to send report mail (ExpiryReport, BrokenSignatureReport).",
            apply: { value, context, config in config.sendmailCommand = try context.path(value) },
            show: { $0.sendmailCommand }
        ),
        ConfigurationKey(
            name: "SpoolThreshold",
            syntax: "BYTES[K|M|G]",
            defaultValue: "8M",
            doc: "Message bodies larger than this are collected in a spool file in SpoolDirectory instead of in memory (at least 1K).",
            apply: { value, _, config in config.spoolThreshold = try ValueParsers.byteSize(value, minimum: 1024) },
            show: { String($0.spoolThreshold) }
        ),
        ConfigurationKey(
            name: "SpoolDirectory",
            syntax: "PATH",
            defaultValue: Configuration.defaultSpoolDirectory,
            doc: "The private directory for spool files (created with mode 0700, must be the milter user's own and not open to others); each file is removed when its message ends or aborts, or the connection closes.",
            apply: { value, context, config in config.spoolDirectory = try context.path(value) },
            show: { $0.spoolDirectory }
        ),
    ]
}

/// `SyslogFacility` values.
public enum SyslogFacility: String, Sendable, Equatable, CaseIterable {
    case mail, daemon, user, local0, local1, local2, local3, local4, local5, local6, local7
}

/// `OnExpiredCertificate` values.
public enum ExpiredCertificateAction: String, Sendable, Equatable, CaseIterable {
    case unsigned
    case tempfail
}

/// `MetricsListen`: an IP address and port.
public struct MetricsEndpoint: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: UInt16
    public let isIPv6: Bool

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    static func parse(_ text: String) throws -> MetricsEndpoint {
        // A port alone: loopback, so that the metrics are not exposed by accident.
        if !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard let port = UInt16(text), port > 0 else { throw ValueProblem("expected a port from 1 to 65535") }
            return MetricsEndpoint(host: "127.0.0.1", port: port, isIPv6: false)
        }
        var rest = Substring(text)
        let host: String
        let v6: Bool
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw ValueProblem("expected [ADDRESS]:PORT") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            v6 = true
        } else {
            guard let colon = rest.lastIndex(of: ":") else { throw ValueProblem("expected ADDRESS:PORT") }
            host = String(rest[..<colon])
            rest = rest[colon...]
            v6 = false
        }
        guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()), port > 0 else {
            throw ValueProblem("expected a port from 1 to 65535 after the address")
        }
        let valid = v6 ? IPAddress.v6(host) != nil : IPAddress.v4(host) != nil
        guard valid else { throw ValueProblem("\"\(host)\" is not an IP\(v6 ? "v6" : "v4") address") }
        return MetricsEndpoint(host: host, port: port, isIPv6: v6)
    }
}

extension ValueParsers {
    /// `30,14,7,1`: whole days from 0 to 3650, sorted descending, duplicates removed.
    static func dayList(_ text: some StringProtocol) throws -> [Int] {
        var days = Set<Int>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = item.trimmingCharacters(in: .whitespaces)
            guard let n = Int(trimmed), (0...3650).contains(n) else {
                throw ValueProblem("expected whole numbers of days from 0 to 3650, separated by commas")
            }
            days.insert(n)
        }
        return days.sorted(by: >)
    }

    /// A plain `local@domain` address (no display name, no brackets).
    static func mailAddress(_ text: some StringProtocol) throws -> String {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
              text.allSatisfy({ $0.isASCII && !$0.isWhitespace && !"<>()[],;:\"\\".contains($0) }) else {
            throw ValueProblem("expected an address such as postmaster@example.com")
        }
        return String(text)
    }
}
