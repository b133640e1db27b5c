// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy

/// A fixed-size pool of libpq connections shared by libmilter's worker threads.
///
/// A thread borrows a connection for one operation and gives it back; when all `size` are lent
/// out it waits at most the time budget. A connection that broke (the server stopped, a
/// failover) is closed, not given back, and the next borrower opens a new one: libpq then tries
/// the hosts again and finds the primary.
final class ConnectionPool: @unchecked Sendable {
    let options: PostgreSQLStoreOptions
    private let events: RecipientStoreEvents
    private let condition = NSCondition()
    private var idle: [PostgreSQLConnection] = []
    /// Connections open (idle and lent out) or being opened.
    private var open = 0
    private var inUse = 0

    init(options: PostgreSQLStoreOptions, events: RecipientStoreEvents) {
        self.options = options
        self.events = events
    }

    /// Runs `body` with a borrowed connection. When a reused connection turns out broken (the
    /// server restarted since it was last used), the call is tried once more on a new one.
    func with<T>(_ body: (PostgreSQLConnection) throws -> T) throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            let (connection, reused) = try borrow()
            do {
                let value = try body(connection)
                giveBack(connection)
                return value
            } catch let failure as PostgreSQLFailure {
                giveBack(connection)
                if failure.kind == .connection, reused, attempt == 1 { continue }
                throw failure
            } catch {
                giveBack(connection)
                throw error
            }
        }
    }

    /// Closes every idle connection (lent-out ones are closed when given back broken, or at release).
    func drain() {
        condition.lock()
        let closing = idle
        idle.removeAll()
        open -= closing.count
        condition.unlock()
        _ = closing
    }

    private func borrow() throws -> (PostgreSQLConnection, Bool) {
        let deadline = Date().addingTimeInterval(options.timeout)
        condition.lock()
        while idle.isEmpty && open >= options.poolSize {
            guard condition.wait(until: deadline) else {
                condition.unlock()
                throw PostgreSQLFailure(kind: .poolExhausted,
                                        message: "all \(options.poolSize) connections stayed busy for \(Int(options.timeout)) s (CertificateStorePoolSize)")
            }
        }
        if let connection = idle.popLast() {
            inUse += 1
            report()
            condition.unlock()
            return (connection, true)
        }
        open += 1
        condition.unlock()
        do {
            let connection = try PostgreSQLConnection(parameters: options.connectionParameters)
            condition.lock()
            inUse += 1
            report()
            condition.unlock()
            return (connection, false)
        } catch {
            condition.lock()
            open -= 1
            condition.signal()
            condition.unlock()
            throw error
        }
    }

    private func giveBack(_ connection: PostgreSQLConnection) {
        let healthy = connection.isHealthy
        condition.lock()
        inUse -= 1
        if healthy {
            idle.append(connection)
        } else {
            open -= 1
        }
        report()
        condition.signal()
        condition.unlock()
        // An unhealthy connection is closed here, outside the lock (deinit calls PQfinish).
    }

    /// Reports the pool's state; called with the lock held.
    private func report() { events.pool(inUse, open) }
}
