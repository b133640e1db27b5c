// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CMilter
import Foundation
import Policy
import Synchronization

/// Runs the milter: registers the callbacks with libmilter, opens the socket and serves until
/// SIGTERM, SIGINT or SIGHUP makes `smfi_main` return.
///
/// libmilter keeps its state in globals, so there is at most one server per process.
public final class MilterServer: Sendable {
    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    let socket: SocketSpec
    let socketMode: UInt32?
    /// Who may connect to an inet socket (`AllowedPeers`); nil lets every peer in.
    let allowedPeers: NetworkList?
    let delegate: any MilterDelegate
    /// `MilterTimeout`: seconds libmilter waits for the MTA's next packet (`smfi_settimeout`).
    let timeoutSeconds: Int32?

    public init(socket: SocketSpec, socketMode: UInt32?, allowedPeers: NetworkList? = .loopbackNetworks,
                timeoutSeconds: Int? = nil, delegate: any MilterDelegate) {
        self.timeoutSeconds = timeoutSeconds.map { Int32(clamping: $0) }
        self.socket = socket
        self.socketMode = socketMode
        self.allowedPeers = allowedPeers
        self.delegate = delegate
    }

    /// Opens the listening socket (so that privileges can be dropped afterwards): an inet
    /// socket with the `AllowedPeers` filter attached, or a unix socket with `SocketMode`,
    /// refused when others could write to it or replace it.
    public func open() throws {
        runtimeDelegate = delegate
        let filter: [PeerFilter.Instruction]?
        switch socket {
        case .inet, .inet6: filter = try allowedPeers.map(PeerFilter.compile)
        case .unix(let path):
            filter = nil
            if let problem = UnixSocketCheck.directoryProblems(socketPath: path).first {
                throw SetupError(description: problem)
            }
        }
        let connection = try ListeningSocket.open(socket, backlog: 128, filter: filter)
        let description = makeDescription()
        guard smfi_register(description) == MI_SUCCESS else {
            throw SetupError(description: "smfi_register failed")
        }
        IdleWatchdog.shared.configure(timeoutSeconds: timeoutSeconds, listening: socket)
        if let timeoutSeconds, smfi_settimeout(timeoutSeconds) != MI_SUCCESS {
            throw SetupError(description: "smfi_settimeout(\(timeoutSeconds)) failed")
        }
        let rc = connection.withCString { smfi_setconn(UnsafeMutablePointer(mutating: $0)) }
        guard rc == MI_SUCCESS else { throw SetupError(description: "smfi_setconn(\(connection)) failed") }
        if case let .unix(path) = socket {
            // After a kill -9 the socket file stays; libmilter's own removal (smfi_opensocket
            // with true) would also take the socket of a milter that is still running.
            do {
                if try ListeningSocket.removeStaleUnixSocket(path) {
                    delegate.log(.notice, "removed the stale socket \(path) (no milter was listening on it)")
                }
            } catch {
                throw SetupError(description: "\(error)")
            }
        }
        // libmilter creates a unix socket with the process umask: create it closed to all, so
        // that it is never open wider than SocketMode, even for a moment.
        let oldMask = umask(0o177)
        let opened = smfi_opensocket(false) == MI_SUCCESS
        umask(oldMask)
        guard opened else {
            throw SetupError(description: "cannot open milter socket \(connection) (in use, or no permission)")
        }
        if let spool = delegate.spoolSettings() {
            let removed = BodySpool.removeOrphans(in: spool.directory)
            if removed > 0 {
                delegate.log(.notice, "removed \(removed) orphaned spool file\(removed == 1 ? "" : "s") from \(spool.directory)")
            }
        }
        if case let .unix(path) = socket {
            // libmilter creates the socket with the process umask; Postfix then gets
            // "Permission denied". Set the configured mode explicitly.
            let mode = mode_t(socketMode ?? 0o660)
            guard chmod(path, mode) == 0 else {
                throw SetupError(description: "chmod \(path): \(ListeningSocket.errnoText())")
            }
            if let problem = UnixSocketCheck.socketProblem(path: path) {
                unlink(path)
                throw SetupError(description: problem)
            }
        }
    }

    /// Where the milter listens and who can connect, for the start-up log line (call after
    /// `open` and after privileges are dropped, so that the owner shown is the final one).
    public func listeningDescription() -> String {
        switch socket {
        case .inet, .inet6:
            guard let allowedPeers else {
                return "\(socket.reachDescription), every peer may connect (AllowedPeers any)"
            }
            let shown = allowedPeers.entries.prefix(8).map(\.description).joined(separator: ", ")
                + (allowedPeers.entries.count > 8 ? ", ... (\(allowedPeers.entries.count) entries)" : "")
            return "\(socket.reachDescription), accepting connections only from \(shown)"
                + (allowedPeers.sourceFile.map { " (AllowedPeers \($0))" } ?? " (AllowedPeers)")
                + "; the kernel drops other peers unseen"
        case let .unix(path):
            return "\(socket) (\(UnixSocketCheck.describe(path: path)))"
        }
    }

    /// Changes the owner of a unix socket (called before privileges are dropped).
    public func chownSocket(uid: uid_t, gid: gid_t) throws {
        guard case let .unix(path) = socket else { return }
        guard chown(path, uid, gid) == 0 else {
            throw SetupError(description: "chown \(path): \(ListeningSocket.errnoText())")
        }
    }

    /// Serves until SIGTERM or SIGINT, reloading on SIGHUP; then waits (bounded) for messages
    /// whose end-of-message is being processed, so that none is left half-edited.
    ///
    /// libmilter's own signal thread treats SIGHUP like SIGTERM (it stops the milter for good:
    /// its stop flag is never reset). So the calling thread blocks the three signals, runs
    /// `smfi_main` on a thread of its own, and waits for them itself with sigwait(2). Linux (and
    /// gVisor) give a process-directed signal to the main thread first when it is waiting for
    /// it, so libmilter's thread does not see them. `run` must be called on the main thread.
    public func run(drainSeconds: Int = 30, reload: @escaping @Sendable () -> Void) -> Int32 {
        var signals = Self.blockSignals()
        IdleWatchdog.shared.start()

        let finished = Atomic<Int32>(Int32.min)
        let listener = ListenerThread()
        let milterThread = Thread {
            listener.enter()
            let rc = smfi_main()
            listener.leave()
            finished.store(rc, ordering: .releasing)
            // smfi_main can end on its own (socket failure): wake the signal loop.
            kill(getpid(), SIGTERM)
        }
        milterThread.stackSize = 1 << 20
        milterThread.start()

        let reloading = Atomic<Bool>(false)
        var received: Int32 = 0
        while true {
            guard sigwait(&signals, &received) == 0 else { continue }
            if received == SIGHUP {
                // Reload off this thread so that it is back in sigwait at once; a SIGHUP that
                // arrives during a reload is folded into it.
                if reloading.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
                    Thread {
                        reload()
                        reloading.store(false, ordering: .releasing)
                    }.start()
                }
                continue
            }
            break
        }
        // From here on an end-of-message that begins is answered with tempfail (the MTA keeps
        // the message), so that the drain below ends with no thread signing or verifying.
        milterShutdown.set()
        // libmilter's listener waits up to 5 s (MI_CHK_TIME) on the listening socket before it
        // looks at its stop flag again, holding the lock that smfi_stop needs to close the
        // socket; a stop or restart took that long. So smfi_stop runs on a thread of its own,
        // and a signal to the listener ends each wait with EINTR until smfi_main returns (sent
        // again every round: one may come before the flag is set or before the wait begins).
        Thread { _ = smfi_stop() }.start()
        var waited = 0
        while finished.load(ordering: .acquiring) == Int32.min && waited < drainSeconds * 10 {
            listener.wake()
            usleep(100_000)
            waited += 1
        }
        waited = 0
        while inFlight.load(ordering: .sequentiallyConsistent) > 0 && waited < drainSeconds * 10 {
            usleep(100_000)
            waited += 1
        }
        if case let .unix(path) = socket { unlink(path) }
        let rc = finished.load(ordering: .acquiring)
        return rc == Int32.min ? 0 : rc
    }

    private func makeDescription() -> smfiDesc {
        var d = smfiDesc()
        d.xxfi_name = milterName
        d.xxfi_version = SMFI_VERSION
        d.xxfi_flags = UInt(SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_QUARANTINE)
        d.xxfi_connect = milterConnect
        d.xxfi_helo = nil
        d.xxfi_envfrom = milterEnvFrom
        d.xxfi_envrcpt = milterEnvRcpt
        d.xxfi_header = milterHeader
        d.xxfi_eoh = milterEndOfHeaders
        d.xxfi_body = milterBody
        d.xxfi_eom = milterEndOfMessage
        d.xxfi_abort = milterAbort
        d.xxfi_close = milterClose
        d.xxfi_unknown = nil
        d.xxfi_data = nil
        d.xxfi_negotiate = milterNegotiate
        return d
    }
}

/// The name libmilter registers; it must outlive `smfi_main`.
nonisolated(unsafe) let milterName: UnsafeMutablePointer<CChar> = strdup("smime-milter")

/// The delegate the C callbacks call. Set once before `smfi_main` starts any thread.
/// Written once in `open()`, before `run` starts libmilter's threads (thread creation orders
/// the write before every read), and only read afterwards: no lock on the per-callback path,
/// where a Mutex was contended by all worker threads (futex calls in the profile).
nonisolated(unsafe) var runtimeDelegate: (any MilterDelegate)?

/// Messages between end-of-message and its reply, for the drain at shutdown.
let inFlight = Atomic<Int>(0)

/// Set when the milter begins to stop: end-of-message then answers tempfail at once.
///
/// The end-of-message counts itself in `inFlight` and then reads the flag; the stop sets the
/// flag and then waits for `inFlight` to reach 0 (both sequentially consistent). So a message
/// counted before the flag was set is waited for, and one counted after it sees the flag: none
/// starts its work after the drain has seen 0.
final class ShutdownFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
    func set() { value.store(true, ordering: .sequentiallyConsistent) }
}

/// The process's shutdown flag (MilterServer.run sets it).
let milterShutdown = ShutdownFlag()

/// Open MTA connections (one `MilterSession` each), for the metrics.
let openConnections = Atomic<Int>(0)

extension MilterServer {
    /// Open MTA connections and messages being decided right now.
    public static func activity() -> (connections: Int, messagesInFlight: Int) {
        (openConnections.load(ordering: .relaxed), inFlight.load(ordering: .relaxed))
    }

    /// Packets the kernel filter has dropped from peers outside `AllowedPeers` since start (each
    /// refused connection attempt is a SYN and its retransmissions), or nil when there is no
    /// filter (a unix socket, `AllowedPeers any`).
    public static func refusedPackets() -> Int? {
        PeerFilter.droppedPackets(fd: filteredListener.load(ordering: .acquiring))
    }

    /// Blocks SIGHUP, SIGTERM and SIGINT in the calling thread, so that every thread started
    /// afterwards inherits the mask and `run` alone receives them. Call first thing in main.
    /// Returns the set, for sigwait.
    @discardableResult
    public static func blockSignals() -> sigset_t {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGHUP)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        return signals
    }
}

/// The thread that runs `smfi_main` (libmilter's listener), and the wake-up sent to it alone at
/// a stop: SIGUSR2, whose handler does nothing and is installed without SA_RESTART, so its only
/// effect is that the listener's wait on the socket returns EINTR (the signal's default action
/// would end the process). The lock keeps the thread from ending between the look-up and
/// pthread_kill: a pthread_t is not valid once its thread is gone.
private final class ListenerThread: @unchecked Sendable {
    private static let wakeSignal = SIGUSR2
    private let lock = NSLock()
    private var thread: pthread_t?

    init() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(Self.wakeSignal, &action, nil)
    }

    func enter() {
        lock.withLock { thread = pthread_self() }
    }

    func leave() {
        lock.withLock { thread = nil }
    }

    func wake() {
        lock.withLock {
            if let thread { _ = pthread_kill(thread, Self.wakeSignal) }
        }
    }
}

func currentDelegate() -> (any MilterDelegate)? {
    runtimeDelegate
}
