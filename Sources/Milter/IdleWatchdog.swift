// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CMilter
import Foundation
import Policy

/// `MilterTimeout` enforced by the milter itself: a connection on which the MTA has sent
/// nothing for that long, between two callbacks, is shut down.
///
/// Why: libmilter takes the timeout (`smfi_settimeout`) but its worker pool checks the
/// sessions that wait for a packet only every 600 s (`DT_CHECK_OLD_SESSIONS`, worker.c of
/// 8.17), so a silent peer held a connection, a thread slot and `MaxConnections` place for up
/// to ten minutes more. libmilter gives a filter no handle on the connection, so the watchdog
/// finds the session's socket in libmilter's context (`smime_milter_ctx_int`) and believes it
/// only when it is a connected stream socket on our listening address; otherwise it says so
/// once and leaves the connection to libmilter. A shut-down socket reads as end-of-file in
/// libmilter, which aborts and closes the session as for any peer that went away; the MTA
/// applies its milter_default_action to a message in progress (tempfail), so nothing is lost.
///
/// A session inside a callback (end-of-message waiting for its turn or signing) is never idle:
/// then the MTA is waiting for us.
final class IdleWatchdog: @unchecked Sendable {
    /// The process's one watchdog (libmilter has one listening socket).
    static let shared = IdleWatchdog()

    struct Watched {
        let fd: Int32
        /// The socket's inode: a descriptor number reused by a later connection is not this one.
        let inode: UInt64
        var lastActivity: UInt64
        var busy: Bool
        var shutDown: Bool
    }

    private let lock = NSLock()
    private var watched: [UInt: Watched] = [:]
    private var timeoutNanoseconds: UInt64 = 0
    private var listening: SocketSpec?
    private var unusableSaid = false
    private var started = false

    /// Sets the bound and the listening socket the sessions' sockets must be on; nil switches
    /// the watchdog off.
    func configure(timeoutSeconds: Int32?, listening: SocketSpec) {
        lock.lock()
        defer { lock.unlock() }
        timeoutNanoseconds = timeoutSeconds.map { UInt64(max(1, $0)) * 1_000_000_000 } ?? 0
        self.listening = listening
    }

    /// Starts the scanning thread (once; call after the process blocked its signals).
    func start() {
        lock.lock()
        let run = !started && timeoutNanoseconds > 0
        started = started || run
        lock.unlock()
        guard run else { return }
        let thread = Thread { [self] in
            while true {
                sleep(1)
                for closed in scan(now: Self.monotonicNow()) {
                    currentDelegate()?.log(.warning, "closed a milter connection on which the MTA sent nothing for "
                                           + "\(closed.idleSeconds) s (MilterTimeout \(closed.timeoutSeconds) s)")
                }
            }
        }
        thread.stackSize = 256 << 10
        thread.start()
    }

    // MARK: the callbacks' side

    /// The first callback of a session (negotiate): finds its socket and starts watching it.
    func watch(_ ctx: OpaquePointer) {
        lock.lock()
        let wanted = timeoutNanoseconds > 0
        let spec = listening
        lock.unlock()
        guard wanted, let spec else { return }
        // Index 2 is where Debian's 8.17 keeps it; index 1 where a 4-byte ctx_id would put it.
        var socket: (fd: Int32, inode: UInt64)?
        for index in [2, 1] {
            let fd = smime_milter_ctx_int(ctx, Int32(index))
            if let inode = Self.sessionSocket(fd, listening: spec) {
                socket = (fd, inode)
                break
            }
        }
        lock.lock()
        defer { lock.unlock() }
        guard let socket else {
            if !unusableSaid {
                unusableSaid = true
                currentDelegate()?.log(.warning, "MilterTimeout: the connection's socket cannot be found in this libmilter; "
                                       + "silent connections are dropped by libmilter only (it checks every 600 s)")
            }
            return
        }
        watched[UInt(bitPattern: ctx)] = Watched(fd: socket.fd, inode: socket.inode, lastActivity: Self.monotonicNow(),
                                                 busy: true, shutDown: false)
    }

    /// A callback starts (`busy`) or ends: the connection is active now.
    func activity(_ ctx: OpaquePointer?, busy: Bool) {
        guard let ctx else { return }
        let key = UInt(bitPattern: ctx)
        let now = Self.monotonicNow()   // outside the lock: every callback of every session comes here
        lock.lock()
        if let index = watched.index(forKey: key) {   // one look-up, the entry changed in place
            watched.values[index].lastActivity = now
            watched.values[index].busy = busy
        }
        lock.unlock()
    }

    /// The session closed (its socket is about to be closed by libmilter).
    func forget(_ ctx: OpaquePointer?) {
        guard let ctx else { return }
        lock.lock()
        watched[UInt(bitPattern: ctx)] = nil
        lock.unlock()
    }

    // MARK: scanning

    struct Closed: Equatable {
        let fd: Int32
        let idleSeconds: UInt64
        let timeoutSeconds: UInt64
    }

    /// Shuts down every watched socket idle for longer than the bound at `now` (monotonic
    /// nanoseconds); entries whose descriptor now names another socket are dropped.
    func scan(now: UInt64) -> [Closed] {
        lock.lock()
        defer { lock.unlock() }
        guard timeoutNanoseconds > 0 else { return [] }
        var closed: [Closed] = []
        for (key, entry) in watched where !entry.busy && !entry.shutDown && now > entry.lastActivity
            && now - entry.lastActivity > timeoutNanoseconds {
            guard Self.inode(of: entry.fd) == entry.inode else {
                watched[key] = nil
                continue
            }
            _ = Glibc.shutdown(entry.fd, Int32(SHUT_RDWR))
            watched[key]!.shutDown = true
            closed.append(Closed(fd: entry.fd, idleSeconds: (now - entry.lastActivity) / 1_000_000_000,
                                 timeoutSeconds: timeoutNanoseconds / 1_000_000_000))
        }
        return closed
    }

    /// How many sessions are watched (tests).
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return watched.count
    }

    /// Watches `fd` as a session under `key` (tests: a socket pair stands for a connection).
    func watch(fd: Int32, key: UInt, lastActivity: UInt64) {
        guard let inode = Self.inode(of: fd) else { return }
        lock.lock()
        watched[key] = Watched(fd: fd, inode: inode, lastActivity: lastActivity, busy: false, shutDown: false)
        lock.unlock()
    }

    // MARK: sockets

    static func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func inode(of fd: Int32) -> UInt64? {
        guard fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK else { return nil }
        return UInt64(st.st_ino)
    }

    /// The inode of `fd` when it is a connected stream socket (not a listener) whose local
    /// address is the milter's listening address; else nil.
    static func sessionSocket(_ fd: Int32, listening: SocketSpec) -> UInt64? {
        guard let inode = inode(of: fd) else { return nil }
        var type: Int32 = 0, accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_STREAM.rawValue) else { return nil }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0, accepting == 0 else { return nil }
        var local = sockaddr_storage()
        var localLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var peer = sockaddr_storage()
        var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &localLength) }
        }
        let connected = withUnsafeMutablePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &peerLength) }
        }
        guard named == 0, connected == 0 else { return nil }
        switch listening {
        case .inet(_, let port), .inet6(_, let port):
            let family = Int32(local.ss_family)
            if family == AF_INET {
                let p = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port } }
                return UInt16(bigEndian: p) == port ? inode : nil
            }
            if family == AF_INET6 {
                let p = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port } }
                return UInt16(bigEndian: p) == port ? inode : nil
            }
            return nil
        case .unix(let path):
            guard Int32(local.ss_family) == AF_UNIX else { return nil }
            let name: String = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { un in
                    withUnsafeBytes(of: un.pointee.sun_path) { raw in
                        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                    }
                }
            }
            return name == path ? inode : nil
        }
    }
}
