// SPDX-License-Identifier: Apache-2.0
/// Where the milter listens, in libmilter/OpenDKIM notation.
///
/// Accepted forms:
/// - `inet:PORT@ADDRESS`: IPv4 (`localhost` means 127.0.0.1);
/// - `inet:PORT`: every IPv4 address of the host (INADDR_ANY, as libmilter and OpenDKIM do);
/// - `inet6:PORT@[ADDRESS]` or `inet6:PORT@ADDRESS`: IPv6 (`localhost` means ::1);
/// - `inet6:PORT`: every IPv6 address (`::`);
/// - `unix:PATH`, `local:PATH` or a bare `/PATH`: a unix-domain socket (absolute path).
public enum SocketSpec: Sendable, Equatable, CustomStringConvertible {
    /// An IPv4 TCP socket. `host` is a numeric IPv4 address (`0.0.0.0` for any).
    case inet(host: String, port: UInt16)
    /// An IPv6 TCP socket. `host` is a numeric IPv6 address without brackets (`::` for any).
    case inet6(host: String, port: UInt16)
    /// A unix-domain socket at an absolute path.
    case unix(path: String)

    /// The default: `inet:8891@127.0.0.1`.
    public static let `default` = SocketSpec.inet(host: "127.0.0.1", port: 8891)

    /// Longest path a unix socket can have (`sun_path` is 108 bytes with its terminating NUL).
    static let maximumUnixPathBytes = 107

    /// The socket in the form it is written in the configuration (`inet6` with brackets).
    public var description: String {
        switch self {
        case let .inet(host, port): return "inet:\(port)@\(host)"
        case let .inet6(host, port): return "inet6:\(port)@[\(host)]"
        case let .unix(path): return "unix:\(path)"
        }
    }

    /// Parses a socket specification; throws `ValueProblem` explaining what is wrong.
    static func parse(_ text: some StringProtocol) throws -> SocketSpec {
        let value = String(text)
        let lower = value.lowercased()
        if value.hasPrefix("/") {
            return try unixSocket(value)
        }
        if lower.hasPrefix("unix:") || lower.hasPrefix("local:"), let colon = value.firstIndex(of: ":") {
            return try unixSocket(String(value[value.index(after: colon)...]))
        }
        let isInet6 = lower.hasPrefix("inet6:")
        guard isInet6 || lower.hasPrefix("inet:") else {
            throw ValueProblem("expected inet:PORT@ADDRESS, inet6:PORT@[ADDRESS], unix:PATH or an absolute path")
        }
        let rest = value.dropFirst(isInet6 ? 6 : 5)
        var portText = rest
        var hostText: Substring?
        if let at = rest.firstIndex(of: "@") {
            portText = rest[..<at]
            hostText = rest[rest.index(after: at)...]
        }
        guard portText.count <= 5, !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = Int(portText), (1...65535).contains(port) else {
            throw ValueProblem("port must be a number from 1 to 65535")
        }
        if isInet6 {
            guard var host = hostText else {
                return .inet6(host: "::", port: UInt16(port))
            }
            if host.hasPrefix("["), host.hasSuffix("]"), host.count >= 2 {
                host = host.dropFirst().dropLast()
            }
            if host.lowercased() == "localhost" {
                return .inet6(host: "::1", port: UInt16(port))
            }
            guard let bytes = IPAddress.v6(host) else {
                throw ValueProblem("bad IPv6 address \(quoted(host)) (host names other than localhost are not supported)")
            }
            return .inet6(host: IPAddress.format(bytes), port: UInt16(port))
        }
        guard let host = hostText else {
            return .inet(host: "0.0.0.0", port: UInt16(port))
        }
        if host.lowercased() == "localhost" {
            return .inet(host: "127.0.0.1", port: UInt16(port))
        }
        guard let bytes = IPAddress.v4(host) else {
            throw ValueProblem("bad IPv4 address \(quoted(host)) (use inet6: for IPv6; host names other than localhost are not supported)")
        }
        return .inet(host: IPAddress.format(bytes), port: UInt16(port))
    }

    private static func unixSocket(_ path: String) throws -> SocketSpec {
        guard path.hasPrefix("/") else {
            throw ValueProblem("a unix socket path must be absolute")
        }
        guard path.utf8.count <= maximumUnixPathBytes else {
            throw ValueProblem("a unix socket path may have at most \(maximumUnixPathBytes) bytes")
        }
        guard !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ValueProblem("control characters are not allowed in a path")
        }
        return .unix(path: path)
    }
}
