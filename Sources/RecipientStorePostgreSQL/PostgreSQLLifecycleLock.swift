// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The lock that lets one gateway of several enrol, renew or synchronise identities at a time
/// when they share a PostgreSQL store: a session-level advisory lock held on a connection of
/// its own for as long as the run lasts, released by `release()` or, at the latest, when the
/// process (and with it the session) ends, so a crashed run never leaves it held.
public final class PostgreSQLLifecycleLock {
    /// The advisory lock key ("smimelif").
    public static let key: Int64 = 0x736D_696D_656C_6966
    private let connection: PostgreSQLConnection

    /// Takes the lock, waiting up to `wait` seconds for another gateway's run to end.
    ///
    /// - Throws: `PostgreSQLFailure` when the database does not answer, or a `Busy` when another
    ///   gateway holds the lock past `wait`.
    public init(options: PostgreSQLStoreOptions, wait: TimeInterval = 300) throws {
        connection = try PostgreSQLConnection(parameters: options.connectionParameters)
        let deadline = Date().addingTimeInterval(wait)
        while true {
            let row = try connection.execute("SELECT pg_try_advisory_lock($1)", [String(Self.key)]).first
            if row?.first == "t" { return }
            guard Date() < deadline else {
                throw Busy(description: "another gateway's smime-milter identity run holds the lifecycle lock in the shared store; try again later")
            }
            usleep(500_000)
        }
    }

    /// Releases the lock (and the connection).
    public func release() {
        _ = try? connection.execute("SELECT pg_advisory_unlock($1)", [String(Self.key)])
    }

    /// Another gateway holds the lock.
    public struct Busy: Error, CustomStringConvertible {
        public let description: String
    }
}
