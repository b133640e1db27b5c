// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import Milter
import Policy

/// The AllowedPeers filter, tested for real: a listening socket with the compiled program
/// attached, and clients bound to loopback source addresses before they connect. A refused
/// peer's SYN is dropped, so its connect never completes; an allowed one completes at once.
@Suite("AllowedPeers kernel filter")
struct PeerFilterTests {
    @Test func onlyTheListedIPv4AddressConnects() throws {
        // The control: without the filter, the other loopback sources do connect.
        try expectPeers(nil, listen: "127.0.0.1", allowed: ["127.0.0.1", "127.0.0.2", "127.0.0.3"], refused: [])
        try expectPeers("127.0.0.1", listen: "127.0.0.1", allowed: ["127.0.0.1"], refused: ["127.0.0.2"])
        try expectPeers("127.0.0.2", listen: "127.0.0.1", allowed: ["127.0.0.2"], refused: ["127.0.0.1", "127.0.0.3"])
    }

    @Test func mostSpecificEntryDecidesAndNegationExcludes() throws {
        try expectPeers("127.0.0.0/8, !127.0.1.0/24, 127.0.1.128/25", listen: "127.0.0.1",
                        allowed: ["127.0.0.5", "127.0.1.128", "127.0.1.200"], refused: ["127.0.1.5", "127.0.1.127"])
        try expectPeers("0.0.0.0/0, !127.0.0.2", listen: "127.0.0.1", allowed: ["127.0.0.3"], refused: ["127.0.0.2"])
        // At equal length the negated entry wins, whatever the order written.
        try expectPeers("127.0.0.4, !127.0.0.4, 127.0.0.6", listen: "127.0.0.1", allowed: ["127.0.0.6"], refused: ["127.0.0.4"])
    }

    @Test func v4MappedEntryMatchesIPv4Peers() throws {
        try expectPeers("::ffff:127.0.0.2", listen: "127.0.0.1", allowed: ["127.0.0.2"], refused: ["127.0.0.1"])
    }

    @Test func dualStackSocketFiltersIPv4PeersByTheIPv4Entries() throws {
        try #require(ipv6Loopback, "no IPv6 loopback here")
        try expectPeers("127.0.0.1, ::1", listen: "::", allowed: ["127.0.0.1", "::1"], refused: ["127.0.0.2"])
        // IPv6 networks, even ::/0, never cover IPv4 peers (as NetworkList.contains says).
        try expectPeers("::/0", listen: "::", allowed: ["::1"], refused: ["127.0.0.1"])
    }

    @Test func ipv6Entries() throws {
        try #require(ipv6Loopback, "no IPv6 loopback here")
        try expectPeers("127.0.0.0/8", listen: "::1", allowed: [], refused: ["::1"])
        try expectPeers("fe80::/10, 2001:db8::1, ::1", listen: "::1", allowed: ["::1"], refused: [])
        try expectPeers("::/127, !::1", listen: "::1", allowed: [], refused: ["::1"])
        try expectPeers("::/96", listen: "::1", allowed: ["::1"], refused: [])
        try expectPeers("::2/127", listen: "::1", allowed: [], refused: ["::1"])
    }

    @Test func largeListStillWorks() throws {
        // 1900 host entries and the one that matters last: a program near the kernel's limit.
        let many = (0..<1900).map { "10.\($0 / 250).\($0 % 250).1" }.joined(separator: "\n")
        try expectPeers(many + "\n127.0.0.9", listen: "127.0.0.1", allowed: ["127.0.0.9"], refused: ["127.0.0.8"])
    }

    @Test func listTooLargeForTheKernelIsRefusedWithAClearError() throws {
        let many = (0..<2100).map { "10.\($0 / 250).\($0 % 250).1" }.joined(separator: "\n")
        let list = try NetworkList.parse(contents: many, file: "peers")
        #expect(throws: PeerFilter.TooLarge.self) { try PeerFilter.compile(list) }
        do {
            _ = try PeerFilter.compile(list)
        } catch {
            #expect("\(error)".contains("2100 entries"))
            #expect("\(error)".contains("4096"))
        }
    }

    @Test func programShape() throws {
        let program = try PeerFilter.compile(.loopbackNetworks)
        // Version branch (6), 127.0.0.0/8: load, mask, compare, return, drop (5); ::1: four
        // word compares (8), return, drop (2).
        #expect(program.count == 21)
        #expect(program.last == PeerFilter.Instruction(code: 0x06, jt: 0, jf: 0, k: 0))
        #expect(program.contains(PeerFilter.Instruction(code: 0x54, jt: 0, jf: 0, k: 0xFF00_0000)))
        #expect(program.contains(PeerFilter.Instruction(code: 0x15, jt: 0, jf: 1, k: 0x7F00_0000)))
        let empty = try PeerFilter.compile(NetworkList(entries: []))
        #expect(empty.count == 8)
        #expect(empty.filter { $0.code == 0x06 }.allSatisfy { $0.k == 0 })
    }

    // MARK: - helpers

    private var ipv6Loopback: Bool {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in6()
        addr.sin6_family = sa_family_t(AF_INET6)
        addr.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        } == 0
    }

    /// Listens on `listen` (an ephemeral port) with the filter for `peers`; clients from each
    /// `allowed` source must connect (bounded wait), and then none from `refused` may have
    /// connected a second later.
    private func expectPeers(_ peers: String?, listen host: String, allowed: [String], refused: [String],
                             sourceLocation: SourceLocation = #_sourceLocation) throws {
        let filter = try peers.map { try PeerFilter.compile(try NetworkList.parse(contents: $0, file: "peers")) }
        let family = host.contains(":") ? AF_INET6 : AF_INET
        let server = try ListeningSocket.openTCP(family: family, host: host, port: 0, backlog: 16,
                                                 filter: filter)
        defer { close(server) }
        let port = localPort(server)
        let target = host == "::" ? nil : host
        var clients: [(source: String, fd: Int32)] = []
        defer { for c in clients { close(c.fd) } }
        for source in allowed + refused {
            clients.append((source, try startConnect(from: source, to: target, port: port)))
        }
        let allowedFDs = clients.prefix(allowed.count).map(\.fd)
        let refusedFDs = clients.suffix(refused.count).map(\.fd)
        // The allowed ones: a loopback handshake; a wide bound.
        let connected = waitConnected(allowedFDs, seconds: 20)
        for (i, source) in allowed.enumerated() {
            #expect(connected[i], "\(source) should connect with AllowedPeers \(peers ?? "(no filter)")", sourceLocation: sourceLocation)
        }
        // The refused ones would have connected as fast; their SYNs are dropped, so never.
        let leaked = waitConnected(refusedFDs, seconds: 1, all: false)
        for (i, source) in refused.enumerated() {
            #expect(!leaked[i], "\(source) must not connect with AllowedPeers \(peers ?? "(no filter)")", sourceLocation: sourceLocation)
        }
        #expect(acceptAll(server) == allowed.count, sourceLocation: sourceLocation)
        // Each refused attempt is a dropped SYN on the listening socket, the one trace of it.
        let dropped = try #require(PeerFilter.droppedPackets(fd: server), sourceLocation: sourceLocation)
        if refused.isEmpty {
            #expect(dropped == 0, sourceLocation: sourceLocation)
        } else {
            #expect(dropped >= refused.count, sourceLocation: sourceLocation)
        }
    }

    private func localPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    /// A non-blocking socket bound to `source`, connecting to `target` (nil: the source
    /// family's loopback address) at `port`.
    private func startConnect(from source: String, to target: String?, port: UInt16) throws -> Int32 {
        let v6 = source.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket: \(errno)") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        let destination = target.map { v6 || !$0.contains(":") ? $0 : "127.0.0.1" } ?? (v6 ? "::1" : "127.0.0.1")
        let rc: Int32
        if v6 {
            var local = sockaddr_in6(), remote = sockaddr_in6()
            local.sin6_family = sa_family_t(AF_INET6)
            remote.sin6_family = sa_family_t(AF_INET6)
            remote.sin6_port = in_port_t(port.bigEndian)
            guard inet_pton(AF_INET6, source, &local.sin6_addr) == 1, inet_pton(AF_INET6, destination, &remote.sin6_addr) == 1,
                  withUnsafePointer(to: &local, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                      bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }) == 0 else {
                close(fd)
                throw Failure("bind \(source): \(errno)")
            }
            rc = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var local = sockaddr_in(), remote = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            remote.sin_family = sa_family_t(AF_INET)
            remote.sin_port = in_port_t(port.bigEndian)
            guard inet_pton(AF_INET, source, &local.sin_addr) == 1, inet_pton(AF_INET, destination, &remote.sin_addr) == 1,
                  withUnsafePointer(to: &local, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                      bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }) == 0 else {
                close(fd)
                throw Failure("bind \(source): \(errno)")
            }
            rc = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard rc == 0 || errno == EINPROGRESS else {
            close(fd)
            throw Failure("connect from \(source): \(errno)")
        }
        return fd
    }

    /// Which of `fds` completed their connect within `seconds` (waiting for all of them, or
    /// the whole time when `all` is false).
    private func waitConnected(_ fds: [Int32], seconds: Double, all: Bool = true) -> [Bool] {
        var done = [Bool](repeating: false, count: fds.count)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            for (i, fd) in fds.enumerated() where !done[i] {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&p, 1, 0) == 1 {
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                    done[i] = error == 0
                }
            }
            if all && done.allSatisfy({ $0 }) { break }
            usleep(10_000)
        }
        return done
    }

    private func acceptAll(_ server: Int32) -> Int {
        _ = fcntl(server, F_SETFL, fcntl(server, F_GETFL) | O_NONBLOCK)
        var count = 0
        while true {
            let fd = accept(server, nil, nil)
            if fd < 0 { return count }
            close(fd)
            count += 1
        }
    }

    private struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
