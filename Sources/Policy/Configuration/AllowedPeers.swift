// SPDX-License-Identifier: Apache-2.0
/// `AllowedPeers`: who may connect to an inet `Socket`.
///
/// The milter protocol has no authentication: the client address and SASL login in the
/// macros are whatever the connecting peer says. So whoever can connect can have mail signed
/// with our keys, and the list of peers is the trust boundary. The milter enforces it with a
/// kernel filter on its listening socket (see `PeerFilter` in the Milter module).
public enum AllowedPeers: Sendable, Equatable, CustomStringConvertible {
    /// Only these addresses and networks (same rules as `InternalHosts`).
    case networks(NetworkList)
    /// Every peer: no filter (the explicit escape hatch, warned at every start).
    case any

    /// The value as it can be written in the configuration.
    public var description: String {
        switch self {
        case let .networks(list): return list.description
        case .any: return "any"
        }
    }

    /// `any`, an inline list, or a file, as for `InternalHosts`.
    static func parse(_ value: String, context: KeyContext) throws -> AllowedPeers {
        if value.lowercased() == "any" { return .any }
        return .networks(try NetworkList.setting(value, context: context, key: "AllowedPeers"))
    }
}

extension NetworkList {
    /// The default `AllowedPeers`: all of 127.0.0.0/8 and ::1.
    public static let loopbackNetworks = NetworkList(entries: [
        Entry(bytes: [127, 0, 0, 0], prefixLength: 8, negated: false),
        Entry(bytes: [UInt8](repeating: 0, count: 15) + [1], prefixLength: 128, negated: false),
    ])

    /// A network-list setting (`InternalHosts`, `AllowedPeers`): a file when the value starts
    /// with /, ./, ../ or file:, else an inline list (an optional `csl:` prefix as in OpenDKIM).
    static func setting(_ value: String, context: KeyContext, key: String) throws -> NetworkList {
        if value.hasPrefix("/") || value.hasPrefix("./") || value.hasPrefix("../") || value.lowercased().hasPrefix("file:") {
            let name = value.lowercased().hasPrefix("file:") ? String(value.dropFirst(5)) : value
            return try context.table(name, for: key)
        }
        let list = value.lowercased().hasPrefix("csl:") ? String(value.dropFirst(4)) : value
        do {
            return try NetworkList.parse(list: list)
        } catch let problem as ValueProblem where listItems(list).count == 1
                    && !list.contains("/") && !list.contains(":") && list.contains(where: \.isLetter) {
            // A lone word may be a file name written without ./
            throw ValueProblem(problem.reason + "; a file name must start with /, ./, ../ or file:")
        }
    }
}

extension ProcessSettings {
    /// The peers the inet socket's filter lets in: `AllowedPeers`, loopback when it is not
    /// set, nil for `AllowedPeers any` (no filter).
    public var effectiveAllowedPeers: NetworkList? {
        switch allowedPeers {
        case nil: return .loopbackNetworks
        case let .networks(list): return list
        case .any: return nil
        }
    }
}

extension SocketSpec {
    /// An inet socket bound to a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z):
    /// only processes of this host can reach it.
    public var isLoopback: Bool {
        switch self {
        case let .inet(host, _), let .inet6(host, _):
            guard let bytes = NetworkList.addressBytes(host) else { return false }
            return bytes.count == 4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1]
        case .unix:
            return false
        }
    }

    /// An inet socket bound to every address of the host (0.0.0.0 or ::).
    public var isWildcard: Bool {
        switch self {
        case let .inet(host, _), let .inet6(host, _):
            guard let bytes = NetworkList.addressBytes(host) else { return false }
            return bytes.allSatisfy { $0 == 0 }
        case .unix:
            return false
        }
    }

    /// The socket with a few words on who can reach it, for the start-up log line.
    public var reachDescription: String {
        switch self {
        case .inet: return isWildcard ? "\(self) (every IPv4 address of this host)" : isLoopback ? "\(self) (loopback)" : "\(self)"
        case .inet6: return isWildcard ? "\(self) (every IPv6 and IPv4 address of this host)" : isLoopback ? "\(self) (loopback)" : "\(self)"
        case .unix: return "\(self)"
        }
    }
}

extension MetricsEndpoint {
    /// Bound to a loopback address.
    public var isLoopback: Bool { SocketSpec.inet(host: host, port: port).isLoopback }
    /// Bound to every address of the host.
    public var isWildcard: Bool { SocketSpec.inet(host: host, port: port).isWildcard }
}

extension ConfigurationParser {
    /// Rules for a configuration the milter is to serve with (`run`, `check-config`), beyond
    /// what each key's syntax allows: who can reach the socket. Errors carry the line of the key
    /// at fault; `lines` maps key names to the lines that set them.
    static func servingRules(_ config: Configuration, file: String, lines: [String: Int])
        -> (errors: [ConfigurationError], warnings: [String]) {
        var errors: [ConfigurationError] = []
        var warnings: [String] = []
        let socket = config.process.socket
        switch socket {
        case .inet, .inet6:
            if config.process.allowedPeers == nil, !socket.isLoopback {
                let every: String
                if case .inet = socket { every = "every IPv4 address" } else { every = "every address" }
                let reach = socket.isWildcard ? "listens on \(every) of this host" : "listens on a non-loopback address"
                errors.append(ConfigurationError(file: file, line: lines["Socket"], message: """
                    Socket \(socket) \(reach) and AllowedPeers is not set: the milter protocol has no \
                    authentication, so any host that reaches the port could have mail signed with your keys. \
                    Name the MTA host(s), e.g. "AllowedPeers 192.0.2.25" (addresses, networks or a file, as for \
                    InternalHosts), or write "AllowedPeers any" if a firewall alone is to decide
                    """))
            }
            if case let .networks(list) = config.process.allowedPeers {
                if list.entries.isEmpty {
                    warnings.append("AllowedPeers \(list) has no entries: no peer can connect to \(socket)")
                } else if socket.isLoopback, !list.contains("127.0.0.1"), !list.contains("::1") {
                    warnings.append("AllowedPeers lets neither 127.0.0.1 nor ::1 connect to the loopback socket \(socket): an MTA on this host connects from one of them")
                }
            }
            if config.process.allowedPeers == .any {
                warnings.append("AllowedPeers any: every host that can reach \(socket) can have mail signed with these keys; "
                                + "name the MTA host(s) in AllowedPeers unless a firewall restricts the port")
            }
        case .unix:
            if config.process.socketMode & 0o002 != 0 {
                let mode = "0" + String(config.process.socketMode, radix: 8)
                errors.append(ConfigurationError(file: file, line: lines["SocketMode"], message: """
                    SocketMode \(mode) lets every local user connect to the milter and have mail signed with your keys; \
                    use 0660 and give the socket the MTA's group (e.g. UserID smime-milter:postfix)
                    """))
            }
            if config.process.allowedPeers != nil {
                warnings.append("AllowedPeers has no effect on a unix socket: SocketMode and the socket's group decide who can connect")
            }
        }
        if let metrics = config.process.metricsListen, !metrics.isLoopback {
            let reach = metrics.isWildcard ? "every address of this host" : "a non-loopback address"
            warnings.append("MetricsListen \(metrics) serves the metrics on \(reach): anyone who reaches it sees the message counts and identity names (never key material); prefer 127.0.0.1")
        }
        return (errors, warnings)
    }
}
