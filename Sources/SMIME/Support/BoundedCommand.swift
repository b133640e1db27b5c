// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs an outside program (a CA's enrolment script, the sendmail command) with bytes on its
/// standard input, collects its standard output and error, and kills it when it runs too long.
///
/// Why not Foundation's `Process`: its pipes are fed and drained by blocks on the global dispatch
/// queue and its exit is reported there too, so when that queue's threads are all busy (many
/// blocking callers at once, as under a sanitizer or a burst of mail) a program that already
/// finished is seen as hanging and its timeout fires. Here one thread does everything with
/// `poll(2)` and `waitpid(2)`: the bound holds whatever else the process is doing.
public enum BoundedCommand {
    /// What a run produced.
    public struct Result: Sendable {
        /// The exit status (0 success); -1 when killed for the timeout or by a signal.
        public var status: Int32
        /// The program was still running at the deadline and was killed (SIGKILL).
        public var timedOut: Bool
        /// The signal that ended the program, if one did.
        public var signal: Int32?
        /// Standard output, at most `outputLimit` bytes.
        public var output: [UInt8]
        /// Standard error, at most `outputLimit` bytes.
        public var errors: [UInt8]
        /// Standard output was longer than `outputLimit` (the rest was read and dropped).
        public var outputTruncated: Bool
    }

    /// Why a program could not be run at all.
    public struct LaunchError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Runs `arguments[0]` (an absolute path; no shell, no PATH search) with the rest as its
    /// arguments and `input` on standard input. Blocks the calling thread for at most about
    /// `timeout` seconds, plus the moment a killed program takes to be reaped.
    public static func run(_ arguments: [String], input: [UInt8], timeout: Double,
                           outputLimit: Int = 1 << 20) throws -> Result {
        guard let program = arguments.first, !program.isEmpty else {
            throw LaunchError(description: "no program named")
        }
        ignoreSIGPIPE
        var pipes: [(read: Int32, write: Int32)] = []
        defer { for pipe in pipes { closeIfOpen(pipe.read); closeIfOpen(pipe.write) } }
        for _ in 0..<3 {
            var ends: [Int32] = [-1, -1]
            guard pipe(&ends) == 0 else { throw LaunchError(description: "pipe: \(errorText())") }
            // Close-on-exec, so that a program another thread starts meanwhile does not hold our
            // ends open (the child would then never see the end of its input).
            _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
            pipes.append((ends[0], ends[1]))
        }
        let pid = try spawn(program: program, arguments: arguments,
                            stdin: pipes[0].read, stdout: pipes[1].write, stderr: pipes[2].write)
        // The child's ends belong to it now.
        closeIfOpen(pipes[0].read); pipes[0].read = -1
        closeIfOpen(pipes[1].write); pipes[1].write = -1
        closeIfOpen(pipes[2].write); pipes[2].write = -1
        for fd in [pipes[0].write, pipes[1].read, pipes[2].read] {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }

        let deadline = monotonicNow() + max(0, timeout)
        var written = 0
        if input.isEmpty { closeIfOpen(pipes[0].write); pipes[0].write = -1 }
        var output: [UInt8] = [], errors: [UInt8] = []
        var outputTruncated = false
        var outputOpen = true, errorsOpen = true
        var timedOut = false
        var buffer = [UInt8](repeating: 0, count: 65536)

        while outputOpen || errorsOpen || pipes[0].write >= 0 {
            let remaining = deadline - monotonicNow()
            if remaining <= 0 { timedOut = true; break }
            var fds: [pollfd] = []
            if pipes[0].write >= 0 { fds.append(pollfd(fd: pipes[0].write, events: Int16(POLLOUT), revents: 0)) }
            if outputOpen { fds.append(pollfd(fd: pipes[1].read, events: Int16(POLLIN), revents: 0)) }
            if errorsOpen { fds.append(pollfd(fd: pipes[2].read, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(remaining * 1000 + 1, 60_000)))
            if ready < 0 {
                if errno == EINTR { continue }
                throw LaunchError(description: "poll: \(errorText())")
            }
            for entry in fds where entry.revents != 0 {
                if entry.fd == pipes[0].write {
                    let count = input.withUnsafeBytes { bytes in
                        write(entry.fd, bytes.baseAddress! + written, bytes.count - written)
                    }
                    if count > 0 { written += count }
                    // EPIPE: the program does not read (all) its input; that is its business.
                    if written == input.count || (count < 0 && errno != EAGAIN && errno != EINTR) {
                        closeIfOpen(pipes[0].write); pipes[0].write = -1
                    }
                } else {
                    let isOutput = entry.fd == pipes[1].read
                    let count = read(entry.fd, &buffer, buffer.count)
                    if count > 0 {
                        if isOutput {
                            let room = outputLimit - output.count
                            if count > room { outputTruncated = true }
                            output += buffer.prefix(max(0, min(room, count)))
                        } else {
                            errors += buffer.prefix(max(0, min(outputLimit - errors.count, count)))
                        }
                    } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                        if isOutput { outputOpen = false } else { errorsOpen = false }
                    }
                }
            }
        }

        // Output closed: the program is exiting (or closed its outputs and goes on; the deadline
        // still holds).
        var status: Int32 = 0
        while !timedOut {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { return finished(status: status, output: output, errors: errors, truncated: outputTruncated) }
            if reaped < 0 && errno != EINTR { throw LaunchError(description: "waitpid: \(errorText())") }
            if monotonicNow() >= deadline { timedOut = true; break }
            usleep(5_000)
        }
        kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return Result(status: -1, timedOut: true, signal: SIGKILL, output: output, errors: errors,
                      outputTruncated: outputTruncated)
    }

    private static func finished(status: Int32, output: [UInt8], errors: [UInt8], truncated: Bool) -> Result {
        let termination = status & 0x7f
        if termination == 0 {
            return Result(status: (status >> 8) & 0xff, timedOut: false, signal: nil, output: output,
                          errors: errors, outputTruncated: truncated)
        }
        return Result(status: -1, timedOut: false, signal: termination, output: output, errors: errors,
                      outputTruncated: truncated)
    }

    private static func spawn(program: String, arguments: [String], stdin: Int32, stdout: Int32,
                              stderr: Int32) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        // Nothing else of ours (libmilter's sockets, the spool, key files) reaches the program.
        if let closeFrom = addCloseFrom { _ = closeFrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The milter blocks signals in its threads and ignores SIGPIPE; the program starts clean.
        var noSignals = sigset_t(), allSignals = sigset_t()
        sigemptyset(&noSignals)
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, program, &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw LaunchError(description: String(cString: strerror(result)))
        }
        return pid
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), looked up at run time:
    /// Swift's Glibc module does not declare GNU extensions.
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let addCloseFrom: AddCloseFrom? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
            return nil
        }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
        #else
        return nil
        #endif
    }()

    /// A program that stops reading its input must give us EPIPE, not kill the milter.
    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    private static func closeIfOpen(_ fd: Int32) { if fd >= 0 { close(fd) } }

    private static func errorText() -> String { String(cString: strerror(errno)) }

    private static func monotonicNow() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
