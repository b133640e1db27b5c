// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy
@testable import smime_milter
import Testing

/// The executable's own state: the broken-signature report rate limit (kept across reloads).
@Suite struct ReportRateLimiterTests {
    @Test func reportRateLimitIsPerSenderPerHour() throws {
        let clock = TestClock(Date(timeIntervalSince1970: 1_000_000))
        let limiter = ReportRateLimiter(clock: { clock.now })
        #expect(limiter.permit("alice@example.com"))
        #expect(!limiter.permit("alice@example.com"))
        #expect(limiter.permit("dave@example.org"))
        clock.advance(59 * 60)
        #expect(!limiter.permit("alice@example.com"))
        clock.advance(2 * 60)
        #expect(limiter.permit("alice@example.com"))
        #expect(!limiter.permit("alice@example.com"))
        // dave's hour started a minute later than alice's first report.
        #expect(limiter.permit("dave@example.org"))
    }

    @Test func reportRateLimitIsThreadSafe() async {
        let limiter = ReportRateLimiter(clock: { Date(timeIntervalSince1970: 0) })
        let permitted = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<64 { group.addTask { limiter.permit("alice@example.com") } }
            var count = 0
            for await ok in group where ok { count += 1 }
            return count
        }
        #expect(permitted == 1)
    }
}

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let time: Locked<Date>
    init(_ start: Date) { time = Locked(start) }
    var now: Date { time.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { time.withLock { $0 += seconds } }
}
