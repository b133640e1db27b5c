// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

/// Bounds how many messages are decided (signed, verified, encrypted) at once.
///
/// Why: libmilter's worker pool starts a thread for every session with a packet waiting, so
/// 1,000 MTA connections ending their messages together meant hundreds of threads each holding
/// a whole message and its signed copy (measured: 420 threads and 400 MB for 1,000 1 MB
/// messages). The CPUs cannot sign more than a few at once anyway; the others wait here with
/// only their spool file open. A message that waits longer than `maximumWait` is tempfailed
/// (the MTA keeps it and retries) rather than holding the MTA past its own timeouts.
final class MessageWorkGate: @unchecked Sendable {
    /// How long a message may wait for its turn (below Postfix's milter_content_timeout, 300 s).
    let maximumWait: Double
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var working = 0

    init(maximumWait: Double) {
        self.maximumWait = maximumWait
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    /// Waits until fewer than `limit` messages are being decided, then counts this one in;
    /// false when `maximumWait` passed first (nothing counted). A limit below 1 admits at once.
    func enter(limit: Int) -> Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if limit < 1 {
            working += 1
            return true
        }
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let wait = max(0, maximumWait)
        deadline.tv_sec += Int(wait)
        deadline.tv_nsec += Int((wait - wait.rounded(.down)) * 1e9)
        if deadline.tv_nsec >= 1_000_000_000 { deadline.tv_sec += 1; deadline.tv_nsec -= 1_000_000_000 }
        while working >= limit {
            if pthread_cond_timedwait(&condition, &mutex, &deadline) == ETIMEDOUT && working >= limit {
                return false
            }
        }
        working += 1
        return true
    }

    /// Counts a message out (after `enter` returned true) and lets a waiting one in.
    func leave() {
        pthread_mutex_lock(&mutex)
        working -= 1
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// Messages being decided now.
    var count: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return working
    }
}

/// The gate of this process (one, like libmilter's worker pool).
let messageWorkGate = MessageWorkGate(maximumWait: 120)
