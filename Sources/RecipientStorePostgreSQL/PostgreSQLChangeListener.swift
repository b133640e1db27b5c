// SPDX-License-Identifier: Apache-2.0
import CLibPQ
import Foundation
import Policy

/// A thread with a connection of its own that LISTENs for changes made by any gateway and
/// drops them from the local read cache.
///
/// A lost connection may have missed notifications: the whole cache is dropped, then again
/// when the listener is back (on the primary, which may be a promoted standby). Between the
/// two, cached answers live at most `CertificateStoreStaleness`. Releasing the listener stops
/// the thread within a second.
public final class PostgreSQLChangeListener: @unchecked Sendable {
    private let state: State

    /// Starts listening; `cache` is held weakly (the cache holds the listener).
    public init(options: PostgreSQLStoreOptions, cache: CachedRecipientStore, events: RecipientStoreEvents = .none) {
        state = State(options: options, cache: cache, events: events)
        let state = self.state
        let thread = Thread { state.loop() }
        thread.name = "store-listener"
        thread.start()
    }

    deinit { state.stop() }

    /// Whether the listener is connected now (for `check-config`-like reports and tests).
    public var isListening: Bool { state.isListening }

    final class State: @unchecked Sendable {
        let options: PostgreSQLStoreOptions
        weak var cache: CachedRecipientStore?
        let events: RecipientStoreEvents
        private let lock = NSLock()
        private var stopped = false
        private var listening = false

        init(options: PostgreSQLStoreOptions, cache: CachedRecipientStore, events: RecipientStoreEvents) {
            self.options = options
            self.cache = cache
            self.events = events
        }

        func stop() { lock.withLock { stopped = true } }
        var isStopped: Bool { lock.withLock { stopped } }
        var isListening: Bool { lock.withLock { listening } }

        func loop() {
            while !isStopped, cache != nil {
                do {
                    let connection = try PostgreSQLConnection(parameters: options.connectionParameters)
                    try connection.execute("LISTEN \(PostgreSQLSchema.channel)")
                    // Whatever changed while nobody listened.
                    cache?.invalidateAll()
                    lock.withLock { listening = true }
                    listen(on: connection)
                } catch {
                    events.error("listener")
                }
                lock.withLock { listening = false }
                cache?.invalidateAll()
                // Try again in a second (the primary restarting, a standby being promoted).
                for _ in 0..<10 where !isStopped { usleep(100_000) }
            }
        }

        /// Waits for notifications until the connection breaks or the listener is stopped.
        private func listen(on connection: PostgreSQLConnection) {
            let socket = PQsocket(connection.handle)
            guard socket >= 0 else { return }
            while !isStopped, cache != nil {
                var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
                let ready = poll(&descriptor, 1, 1000)
                if ready < 0 && errno != EINTR { return }
                if ready > 0 {
                    guard PQconsumeInput(connection.handle) == 1 else { return }
                    while let notification = PQnotifies(connection.handle) {
                        let payload = notification.pointee.extra.map { String(cString: $0) } ?? "*"
                        PQfreemem(notification)
                        if payload == "*" || payload.isEmpty {
                            cache?.invalidateAll()
                        } else {
                            cache?.invalidate(address: payload)
                        }
                    }
                }
                guard PQstatus(connection.handle) == CONNECTION_OK else { return }
            }
        }
    }
}
