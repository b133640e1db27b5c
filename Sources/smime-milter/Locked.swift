// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A value behind a pthread mutex (NSLock), for state that libmilter's worker threads, timers
/// and reloads share.
///
/// Why not `Synchronization.Mutex`: on Linux its contended path waits on a futex inside the
/// uninstrumented standard library, so ThreadSanitizer does not see the hand-over and reports
/// a race on the protected value that is not there (seen in `make sanitize`, ReportRateLimiter
/// under 64 concurrent callers). TSan intercepts pthread mutexes, so `make sanitize` stays
/// meaningful for everything kept here.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
