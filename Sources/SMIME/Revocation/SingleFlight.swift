// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Runs fetches on threads of their own: one at a time per key however many callers want it
/// (the later callers wait for the first one's result), at most `maximumConcurrent` at once,
/// and at most `maximumPending` keys waiting, and each caller waits no longer than its own
/// deadline. A fetch whose callers have all given up still finishes (within its own timeout)
/// and its result goes to `completion`, so the next message finds it in the cache.
public final class SingleFlight<Value: Sendable>: @unchecked Sendable {
    public let maximumConcurrent: Int
    public let maximumPending: Int

    /// Read and written only under `condition`.
    private final class Flight: @unchecked Sendable {
        var value: Value?
    }

    private let condition = NSCondition()
    private var flights: [String: Flight] = [:]
    private let slots: DispatchSemaphore
    /// How many fetches were started (for tests: single-flight means one per key).
    private var started = 0

    public init(maximumConcurrent: Int = 8, maximumPending: Int = 256) {
        self.maximumConcurrent = max(1, maximumConcurrent)
        self.maximumPending = max(1, maximumPending)
        slots = DispatchSemaphore(value: self.maximumConcurrent)
    }

    /// What a caller got.
    public enum Outcome {
        /// The fetch finished in time.
        case value(Value)
        /// The deadline passed first (the fetch goes on).
        case timedOut
        /// Too many fetches are already waiting.
        case overloaded
    }

    /// The value for `key`, fetched by `work` unless a fetch for it is already running, waiting
    /// until `deadline` at most. `completion` runs once per fetch, on the fetching thread,
    /// before waiting callers are woken.
    public func value(for key: String, deadline: Date, work: @escaping @Sendable () -> Value,
                      completion: @escaping @Sendable (Value) -> Void = { _ in }) -> Outcome {
        condition.lock()
        defer { condition.unlock() }
        let flight: Flight
        if let running = flights[key] {
            flight = running
        } else {
            guard flights.count < maximumPending else { return .overloaded }
            flight = Flight()
            flights[key] = flight
            started += 1
            let thread = Thread { [self] in
                slots.wait()
                let value = work()
                slots.signal()
                completion(value)
                condition.lock()
                flight.value = value
                flights[key] = nil
                condition.broadcast()
                condition.unlock()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        while flight.value == nil {
            if !condition.wait(until: deadline) { break }
        }
        if let value = flight.value { return .value(value) }
        return .timedOut
    }

    /// How many fetches have been started so far.
    public var fetchesStarted: Int { condition.lock(); defer { condition.unlock() }; return started }
}
