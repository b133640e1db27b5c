// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CMilter
import Policy
import Synchronization

/// Opens the listening socket for libmilter.
///
/// For inet sockets we create the socket ourselves and hand it to libmilter as `fd:N`, because
/// libmilter never sets TCP_NODELAY: its several end-of-message replies then meet Nagle's
/// algorithm and the MTA's delayed ACK, which holds one session to about 20 messages a second.
/// Accepted sockets inherit TCP_NODELAY from the listener on Linux.
/// Owning the socket also lets us attach the `AllowedPeers` kernel filter (`PeerFilter`)
/// before it listens. Unix sockets are created by libmilter; we then set their mode so that
/// Postfix can connect.
enum ListeningSocket {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Returns the connection string for `smfi_setconn`. `filter` is the compiled
    /// `AllowedPeers` program for an inet socket, nil for none (`AllowedPeers any`).
    static func open(_ spec: SocketSpec, backlog: Int32, filter: [PeerFilter.Instruction]?) throws -> String {
        switch spec {
        case let .inet(host, port):
            return "fd:\(try openTCP(family: AF_INET, host: host, port: port, backlog: backlog, filter: filter))"
        case let .inet6(host, port):
            return "fd:\(try openTCP(family: AF_INET6, host: host, port: port, backlog: backlog, filter: filter))"
        case let .unix(path):
            return "unix:\(path)"
        }
    }

    static func openTCP(family: Int32, host: String, port: UInt16, backlog: Int32,
                        filter: [PeerFilter.Instruction]?) throws -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket(): \(errnoText())") }
        var ok = false
        defer { if !ok { close(fd) } }
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size)
        guard setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, size) == 0 else {
            throw Failure(description: "setsockopt(TCP_NODELAY): \(errnoText())")
        }
        // Keep the descriptor out of programs we run (the sendmail command for reports).
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let bound: Int32
        if family == AF_INET {
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(port.bigEndian)
            let text = host.isEmpty || host == "*" ? "0.0.0.0" : host
            guard inet_pton(AF_INET, text, &addr.sin_addr) == 1 else {
                throw Failure(description: "not an IPv4 address: \(host)")
            }
            bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        } else {
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = in_port_t(port.bigEndian)
            var text = host.isEmpty || host == "*" ? "::" : host
            if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
            guard inet_pton(AF_INET6, text, &addr.sin6_addr) == 1 else {
                throw Failure(description: "not an IPv6 address: \(host)")
            }
            bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        guard bound == 0 else {
            throw Failure(description: "cannot listen on \(host) port \(port): \(errnoText())")
        }
        // Before listen(2): no connection may be queued before the filter is in place.
        if let filter {
            try PeerFilter.attach(filter, to: fd)
            filteredListener.store(fd, ordering: .releasing)
        }
        guard listen(fd, backlog) == 0 else { throw Failure(description: "listen(): \(errnoText())") }
        ok = true
        return fd
    }

    /// Clears the way for a unix socket at `path`: a socket file that no process listens on
    /// any more (left by a milter that was killed) is removed, so a restart binds at once. A
    /// socket that accepts a connection belongs to a running milter and is left alone, and
    /// anything that is not a socket is never removed. Returns whether a stale socket was removed.
    static func removeStaleUnixSocket(_ path: String) throws -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return false }
            throw Failure(description: "cannot check the milter socket \(path): \(errnoText())")
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw Failure(description: "\(path) exists and is not a socket; not removing it")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw Failure(description: "the socket path \(path) is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket(): \(errnoText())") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        let connectError = errno
        close(fd)
        if connected == 0 {
            throw Failure(description: "another milter is listening on \(path); not starting a second one")
        }
        guard connectError == ECONNREFUSED else {
            errno = connectError
            throw Failure(description: "cannot check the milter socket \(path): \(errnoText())")
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw Failure(description: "cannot remove the stale socket \(path): \(errnoText())")
        }
        return true
    }

    static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}

/// The inet listening socket that carries the AllowedPeers filter, or -1 (one server per process).
let filteredListener = Atomic<Int32>(-1)
