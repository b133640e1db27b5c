// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

/// A milter socket in libmilter's syntax: `inet:PORT@ADDRESS` (IPv4) or `unix:PATH`.
enum Endpoint: CustomStringConvertible, Sendable {
    case inet(port: UInt16, address: String)
    case unix(path: String)

    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    static func parse(_ text: String) throws -> Endpoint {
        if text.hasPrefix("unix:") || text.hasPrefix("local:") {
            let path = String(text.drop { $0 != ":" }.dropFirst())
            guard !path.isEmpty, path.utf8.count < 108 else { throw ParseError(description: "bad unix socket path in \(text)") }
            return .unix(path: path)
        }
        if text.hasPrefix("inet:") {
            let rest = text.dropFirst(5)
            let parts = rest.split(separator: "@", maxSplits: 1).map(String.init)
            guard let port = UInt16(parts[0]), port > 0 else { throw ParseError(description: "bad port in \(text)") }
            return .inet(port: port, address: parts.count > 1 ? parts[1] : "127.0.0.1")
        }
        throw ParseError(description: "socket must be inet:PORT@ADDRESS or unix:PATH, not \(text)")
    }

    var description: String {
        switch self {
        case let .inet(port, address): return "inet:\(port)@\(address)"
        case let .unix(path): return "unix:\(path)"
        }
    }

    var kind: String {
        switch self {
        case .inet: return "inet"
        case .unix: return "unix"
        }
    }
}

struct SocketError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String) {
        description = "\(what): \(String(cString: strerror(errno)))"
    }
    init(message: String) {
        description = message
    }
}

/// Fills a sockaddr for `endpoint` and calls `body` with it.
func withSocketAddress<R>(_ endpoint: Endpoint, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) throws -> R {
    switch endpoint {
    case let .inet(port, address):
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &sin.sin_addr) == 1 else {
            throw SocketError(message: "not an IPv4 address: \(address)")
        }
        return try withUnsafePointer(to: &sin) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    case let .unix(path):
        var sun = sockaddr_un()
        sun.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: sun.sun_path) else { throw SocketError(message: "unix path too long") }
        withUnsafeMutableBytes(of: &sun.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return try withUnsafePointer(to: &sun) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}

/// A connected stream socket with a read buffer. Not shared between threads.
final class Connection {
    let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 256 * 1024)
    private var start = 0
    private var end = 0

    init(fd: Int32) {
        self.fd = fd
    }

    /// Connects to `endpoint`; TCP sockets get TCP_NODELAY so that the client never adds
    /// Nagle delays of its own.
    static func connect(to endpoint: Endpoint, noDelay: Bool = true) throws -> Connection {
        let domain: Int32
        if case .unix = endpoint { domain = AF_UNIX } else { domain = AF_INET }
        let fd = socket(domain, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        if case .inet = endpoint, noDelay {
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        // A milter that stops answering must end the run with an error, not hang it.
        var timeout = timeval(tv_sec: 300, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let rc = try withSocketAddress(endpoint) { Glibc.connect(fd, $0, $1) }
        guard rc == 0 else {
            let error = SocketError("connect \(endpoint)")
            close(fd)
            throw error
        }
        return Connection(fd: fd)
    }

    deinit {
        close(fd)
    }

    /// Write each milter packet with its own send(2), as Postfix does: with Nagle on (no
    /// TCP_NODELAY) this reproduces an MTA's small-write pattern on the wire.
    var writesPacketByPacket = false

    func write(_ bytes: [UInt8]) throws {
        guard writesPacketByPacket else { return try send(bytes[...]) }
        var offset = 0
        while offset < bytes.count {
            let length = Int(Wire.readUInt32(bytes[...], at: offset) ?? UInt32(bytes.count))
            let end = min(offset + 4 + length, bytes.count)
            try send(bytes[offset..<end])
            offset = end
        }
    }

    private func send(_ bytes: ArraySlice<UInt8>) throws {
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SocketError("send")
                }
                offset += n
            }
        }
    }

    /// Reads one packet; nil at a clean end of stream before a packet starts.
    func readPacket() throws -> Packet? {
        guard try fill(4, eofOK: true) else { return nil }
        let length = Int(UInt32(buffer[start]) << 24 | UInt32(buffer[start + 1]) << 16
                         | UInt32(buffer[start + 2]) << 8 | UInt32(buffer[start + 3]))
        guard length >= 1, length <= Wire.maximumPacket else {
            throw SocketError(message: "malformed packet: length \(length)")
        }
        start += 4
        if length > buffer.count {
            // A packet larger than the buffer (replace-body chunks are at most 64 KiB, so this is
            // rare): read it into its own array.
            var out = Array(buffer[start..<end])
            start = end
            out.reserveCapacity(length)
            while out.count < length {
                let n = try readSome()
                let take = min(n, length - out.count)
                out.append(contentsOf: buffer[0..<take])
                start = take
            }
            return Packet(command: out[0], payload: out[1...])
        }
        _ = try fill(length, eofOK: false)
        let command = buffer[start]
        let payload = buffer[(start + 1)..<(start + length)]
        start += length
        return Packet(command: command, payload: payload)
    }

    /// Ensures `count` bytes are buffered. Returns false only at EOF with nothing buffered and `eofOK`.
    private func fill(_ count: Int, eofOK: Bool) throws -> Bool {
        if end - start >= count { return true }
        if start > 0 {
            let n = end - start
            if n > 0 { buffer.withUnsafeMutableBufferPointer { p in
                _ = memmove(p.baseAddress!, p.baseAddress! + start, n)
            } }
            start = 0
            end = n
        }
        while end - start < count {
            let n = buffer.withUnsafeMutableBytes { raw in
                recv(fd, raw.baseAddress! + end, raw.count - end, 0)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw SocketError("recv")
            }
            if n == 0 {
                if eofOK && end == start { return false }
                throw SocketError(message: "connection closed in the middle of a packet")
            }
            end += n
        }
        return true
    }

    /// Reads whatever arrives into an emptied buffer; returns the number of bytes.
    private func readSome() throws -> Int {
        start = 0
        end = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in recv(fd, raw.baseAddress!, raw.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw SocketError("recv") }
            if n == 0 { throw SocketError(message: "connection closed in the middle of a packet") }
            end = n
            return n
        }
    }
}
