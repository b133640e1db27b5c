// SPDX-License-Identifier: Apache-2.0
import Foundation

/// What a certificate store reports for metrics: the executable turns these into Prometheus
/// series (the store modules know nothing of swift-metrics). Every closure may be called from
/// any thread.
public struct RecipientStoreEvents: Sendable {
    /// A lookup answered from the local cache (true) or not (false).
    public var cacheLookup: @Sendable (_ hit: Bool) -> Void
    /// One database operation (`current`, `upsert`, ...): its time and whether it succeeded.
    public var operation: @Sendable (_ name: String, _ seconds: Double, _ ok: Bool) -> Void
    /// An error by kind (`connect`, `timeout`, `query`, `pool_exhausted`, `newer_schema`, ...).
    public var error: @Sendable (_ kind: String) -> Void
    /// Connections of the pool now lent out, and open.
    public var pool: @Sendable (_ inUse: Int, _ open: Int) -> Void

    public init(cacheLookup: @escaping @Sendable (Bool) -> Void = { _ in },
                operation: @escaping @Sendable (String, Double, Bool) -> Void = { _, _, _ in },
                error: @escaping @Sendable (String) -> Void = { _ in },
                pool: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) {
        self.cacheLookup = cacheLookup
        self.operation = operation
        self.error = error
        self.pool = pool
    }

    /// Reports nothing.
    public static let none = RecipientStoreEvents()
}
