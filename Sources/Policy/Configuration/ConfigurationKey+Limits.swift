// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Resource limits per milter process and per MTA connection (issue 11).
public struct LimitSettings: Sendable, Equatable {
    /// `MaxConnections`: open MTA connections beyond this many are told to try again at connect.
    public var maxConnections: Int = 1000
    /// `MilterTimeout`: seconds libmilter waits for the MTA's next packet (`smfi_settimeout`)
    /// before it drops a stalled connection.
    public var milterTimeout: Int = 600

    public init() {}
}

/// Keys for resource limits.
extension ConfigurationKey {
    static let limits: [ConfigurationKey] = [
        ConfigurationKey(
            name: "MaxConnections",
            syntax: "COUNT",
            defaultValue: "1000",
            doc: "At most this many MTA connections are served at once; a connection beyond it gets a tempfail at connect (the MTA gives its own 4xx) with a log line, and the MTA keeps the mail and retries.",
            apply: { value, _, config in
                guard let n = Int(value), (1...100_000).contains(n) else {
                    throw ValueProblem("expected a number of connections from 1 to 100000")
                }
                config.limits.maxConnections = n
            },
            show: { String($0.limits.maxConnections) }
        ),
        ConfigurationKey(
            name: "MilterTimeout",
            syntax: "SECONDS",
            defaultValue: "600",
            doc: "Seconds libmilter waits for the MTA's next packet (smfi_settimeout); read at start, not on reload.",
            apply: { value, _, config in
                guard let n = Int(value), (1...86_400).contains(n) else {
                    throw ValueProblem("expected a number of seconds from 1 to 86400")
                }
                config.limits.milterTimeout = n
            },
            show: { String($0.limits.milterTimeout) }
        ),
    ]
}
