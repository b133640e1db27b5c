// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Lets each report key through at most once per `interval` (in memory, per process; a restart
/// forgets). Thread-safe: the milter calls it from libmilter's worker threads.
final class ReportRateLimiter: Sendable {
    /// The shortest time between two reports with the same key.
    let interval: TimeInterval
    private let clock: @Sendable () -> Date
    /// Key → when a report last went out. Pruned when it grows, so it stays bounded by the
    /// number of keys seen within one interval.
    private let lastSent = Locked<[String: Date]>([:])
    private static let pruneThreshold = 10_000

    /// - Parameters:
    ///   - interval: seconds between reports with the same key (one hour by default).
    ///   - clock: the current time (injectable for tests).
    init(interval: TimeInterval = 3_600, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.interval = interval
        self.clock = clock
    }

    /// True (and the time recorded) when a report with `key` may go out now; false when one
    /// went out less than `interval` ago.
    func permit(_ key: String) -> Bool {
        let now = clock()
        return lastSent.withLock { sent in
            if let last = sent[key], now.timeIntervalSince(last) < interval, now >= last {
                return false
            }
            if sent.count >= Self.pruneThreshold {
                sent = sent.filter { now.timeIntervalSince($0.value) < interval }
            }
            sent[key] = now
            return true
        }
    }
}
