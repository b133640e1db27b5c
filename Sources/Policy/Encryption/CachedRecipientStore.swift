// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A local read cache in front of a shared store, so that the end-of-message path does not make
/// a network round trip per recipient per message.
///
/// Only `current(for:)` is cached (what RCPT time and end-of-message ask), including "no
/// certificate". An entry is used for at most `staleness` seconds; a change notification from
/// the database (`invalidate(address:)`, `invalidateAll()` when notifications may have been
/// missed) drops it at once. Writes through this store drop the address they change. The
/// point-of-use check (validity, trust, revocation) is made on every lookup anyway: the cache
/// holds only what the store said.
///
/// Race: a lookup that started before an invalidation must not put its (older) answer into the
/// cache after it; every invalidation moves `epoch` on, and an answer is kept only when the
/// epoch did not move while it was fetched.
public final class CachedRecipientStore: RecipientCertificateStore, @unchecked Sendable {
    public let backing: any RecipientCertificateStore
    public let staleness: TimeInterval
    /// More entries than this and the cache starts again empty (memory is bounded).
    public let capacity: Int
    private let clock: @Sendable () -> Date
    private let events: RecipientStoreEvents
    private let lock = NSLock()
    private var entries: [String: (value: StoredRecipientCertificate?, fetched: Date)] = [:]
    private var epoch: UInt64 = 0
    /// Kept alive with the cache (the change listener, which stops when released).
    private let companion: (any AnyObject & Sendable)?

    public init(backing: any RecipientCertificateStore, staleness: TimeInterval, capacity: Int = 100_000,
                events: RecipientStoreEvents = .none, companion: (any AnyObject & Sendable)? = nil,
                clock: @escaping @Sendable () -> Date = { Date() }) {
        self.backing = backing
        self.staleness = staleness
        self.capacity = capacity
        self.events = events
        self.companion = companion
        self.clock = clock
    }

    /// Drops what is cached for one address (a change notification named it).
    public func invalidate(address: String) {
        lock.withLock {
            epoch &+= 1
            entries[address.lowercased()] = nil
        }
    }

    /// Drops everything (the notification channel was lost, so changes may have been missed).
    public func invalidateAll() {
        lock.withLock {
            epoch &+= 1
            entries.removeAll()
        }
    }

    /// How many addresses are cached now (tests, metrics).
    public var count: Int { lock.withLock { entries.count } }

    public func current(for address: String) throws -> StoredRecipientCertificate? {
        let key = address.lowercased()
        let now = clock()
        let (cached, startEpoch): ((value: StoredRecipientCertificate?, fetched: Date)?, UInt64) = lock.withLock {
            (entries[key], epoch)
        }
        if let cached, now.timeIntervalSince(cached.fetched) < staleness, now >= cached.fetched {
            events.cacheLookup(true)
            return cached.value
        }
        events.cacheLookup(false)
        let value = try backing.current(for: key)
        lock.withLock {
            guard epoch == startEpoch else { return }
            if entries.count >= capacity { entries.removeAll() }
            entries[key] = (value, now)
        }
        return value
    }

    public func history(for address: String) throws -> [StoredRecipientCertificate] {
        try backing.history(for: address)
    }

    @discardableResult
    public func upsert(_ certificate: StoredRecipientCertificate) throws -> RecipientCertificateUpsert {
        defer { invalidate(address: certificate.address) }
        return try backing.upsert(certificate)
    }

    @discardableResult
    public func remove(address: String) throws -> Int {
        defer { invalidate(address: address) }
        return try backing.remove(address: address)
    }

    public func list() throws -> [StoredRecipientCertificate] { try backing.list() }

    public func logHarvestDecision(_ entry: HarvestLogEntry) throws { try backing.logHarvestDecision(entry) }

    public func harvestLog(limit: Int) throws -> [HarvestLogEntry] { try backing.harvestLog(limit: limit) }
}
