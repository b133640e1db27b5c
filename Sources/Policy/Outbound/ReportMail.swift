// SPDX-License-Identifier: Apache-2.0
import Foundation
import Synchronization

/// A short report the policy asks to be mailed (through the local sendmail command) after a
/// message was handled, e.g. when a broken client signature was stripped.
public struct ReportMail: Sendable, Equatable {
    /// The recipient (`BrokenSignatureReport`).
    public var recipient: String
    /// The Subject, plain ASCII.
    public var subject: String
    /// The body text, lines separated by "\n".
    public var text: String
    /// What the rate limit counts: reports with the same key go at most once per interval
    /// (the sender's address, so one noisy sender gives one report an hour).
    public var rateKey: String

    public init(recipient: String, subject: String, text: String, rateKey: String) {
        self.recipient = recipient
        self.subject = subject
        self.text = text
        self.rateKey = rateKey
    }

    /// The whole message as the sendmail command reads it (LF line ends; sendmail adds From,
    /// Date and Message-ID). Auto-Submitted keeps vacation responders from answering it.
    public var message: String {
        """
        To: \(recipient)
        Subject: \(subject)
        Auto-Submitted: auto-generated
        MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: 8bit

        \(text)

        """
    }
}

/// Lets each report key through at most once per `interval` (in memory, per process; a restart
/// forgets). Thread-safe: the milter calls it from libmilter's worker threads.
public final class ReportRateLimiter: Sendable {
    /// The shortest time between two reports with the same key.
    public let interval: TimeInterval
    private let clock: @Sendable () -> Date
    /// Key → when a report last went out. Pruned when it grows, so it stays bounded by the
    /// number of keys seen within one interval.
    private let lastSent = Mutex<[String: Date]>([:])
    private static let pruneThreshold = 10_000

    /// - Parameters:
    ///   - interval: seconds between reports with the same key (one hour by default).
    ///   - clock: the current time (injectable for tests).
    public init(interval: TimeInterval = 3_600, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.interval = interval
        self.clock = clock
    }

    /// True (and the time recorded) when a report with `key` may go out now; false when one
    /// went out less than `interval` ago.
    public func permit(_ key: String) -> Bool {
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
