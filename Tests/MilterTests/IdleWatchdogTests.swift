// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
@testable import Milter
import Policy
import Testing

/// The MilterTimeout watchdog against real sockets: which descriptors it believes are a
/// session's, and what a scan shuts down. (Through libmilter and a silent client:
/// Tests/integration/test_limits.py.)
@Suite(.serialized) struct IdleWatchdogTests {
    static let second: UInt64 = 1_000_000_000

    /// A TCP listener on 127.0.0.1, a client connected to it, and the accepted end.
    func connectedPair() throws -> (listener: Int32, client: Int32, accepted: Int32, port: UInt16) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(bound == 0 && listen(listener, 4) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        let accepted = accept(listener, nil, nil)
        #expect(accepted >= 0)
        return (listener, client, accepted, UInt16(bigEndian: address.sin_port))
    }

    @Test func onlyAConnectedSocketOnTheListeningAddressIsASession() throws {
        let pair = try connectedPair()
        defer { for fd in [pair.listener, pair.client, pair.accepted] { close(fd) } }
        #expect(IdleWatchdog.sessionSocket(pair.accepted, listening: .inet(host: "127.0.0.1", port: pair.port)) != nil)
        #expect(IdleWatchdog.sessionSocket(pair.listener, listening: .inet(host: "127.0.0.1", port: pair.port)) == nil)
        #expect(IdleWatchdog.sessionSocket(pair.accepted, listening: .inet(host: "127.0.0.1", port: pair.port &+ 1)) == nil)
        #expect(IdleWatchdog.sessionSocket(pair.accepted, listening: .unix(path: "/run/smime-milter/milter.sock")) == nil)
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        defer { close(pipeEnds[0]); close(pipeEnds[1]) }
        #expect(IdleWatchdog.sessionSocket(pipeEnds[0], listening: .inet(host: "127.0.0.1", port: pair.port)) == nil)
    }

    @Test func aSilentSessionIsShutDownAndItsPeerSeesTheEnd() throws {
        let pair = try connectedPair()
        defer { for fd in [pair.listener, pair.client, pair.accepted] { close(fd) } }
        let watchdog = IdleWatchdog()
        watchdog.configure(timeoutSeconds: 5, listening: .inet(host: "127.0.0.1", port: pair.port))
        let start = IdleWatchdog.monotonicNow()
        watchdog.watch(fd: pair.accepted, key: 1, lastActivity: start)
        // Not yet: 4 s of silence under a 5 s bound.
        #expect(watchdog.scan(now: start + 4 * Self.second).isEmpty)
        // Busy (inside a callback: end-of-message signing) is never idle.
        watchdog.activity(OpaquePointer(bitPattern: 1), busy: true)
        #expect(watchdog.scan(now: start + 60 * Self.second).isEmpty)
        watchdog.activity(OpaquePointer(bitPattern: 1), busy: false)
        let after = IdleWatchdog.monotonicNow()
        let closed = watchdog.scan(now: after + 6 * Self.second)
        #expect(closed == [IdleWatchdog.Closed(fd: pair.accepted, idleSeconds: 6, timeoutSeconds: 5)])
        // The MTA's end reads end-of-file; a second scan does not shut it down again.
        var byte: UInt8 = 0
        #expect(read(pair.client, &byte, 1) == 0)
        #expect(watchdog.scan(now: after + 20 * Self.second).isEmpty)
        watchdog.forget(OpaquePointer(bitPattern: 1))
        #expect(watchdog.count == 0)
    }

    @Test func aReusedDescriptorIsNotShutDown() throws {
        let first = try connectedPair()
        let second = try connectedPair()
        let number = first.accepted
        defer {
            // Each descriptor exactly once: `number` is now the duplicate of second.accepted.
            for fd in [first.listener, first.client, number, second.listener, second.client, second.accepted] { close(fd) }
        }
        let watchdog = IdleWatchdog()
        watchdog.configure(timeoutSeconds: 5, listening: .inet(host: "127.0.0.1", port: first.port))
        watchdog.watch(fd: number, key: 7, lastActivity: 0)
        // The session's socket closes without a close callback and its number is reused by
        // another connection. dup2 does both in one step, so no other thread of the test process
        // can take the number in between (a close followed by a hoped-for reuse could, and did).
        #expect(dup2(second.accepted, number) == number)
        #expect(watchdog.scan(now: IdleWatchdog.monotonicNow()).isEmpty)
        #expect(watchdog.count == 0)
        var byte: UInt8 = 0
        _ = fcntl(second.client, F_SETFL, fcntl(second.client, F_GETFL) | O_NONBLOCK)
        let got = read(second.client, &byte, 1)
        let readError = errno
        #expect(got == -1 && readError == EAGAIN, "still open: nothing was shut down (read \(got), errno \(readError))")
        // And the first connection is gone for its client, as a closed session's is.
        #expect(read(first.client, &byte, 1) == 0)
    }

    @Test func offWithoutATimeout() throws {
        let watchdog = IdleWatchdog()
        watchdog.configure(timeoutSeconds: nil, listening: .default)
        #expect(watchdog.scan(now: .max).isEmpty)
    }
}
