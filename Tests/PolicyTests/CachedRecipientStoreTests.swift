// SPDX-License-Identifier: Apache-2.0
import Foundation
@testable import Policy
import Testing

/// The local read cache in front of a shared store: staleness, invalidation by address and as
/// a whole, writes through it, and a lookup racing an invalidation.
@Suite struct CachedRecipientStoreTests {
    /// A clock the test moves.
    final class Clock: @unchecked Sendable {
        private let lock = NSLock()
        private var now = Date(timeIntervalSince1970: 1_800_000_000)
        var date: Date { lock.withLock { now } }
        func advance(_ seconds: TimeInterval) { lock.withLock { now += seconds } }
    }

    /// Counts what reaches the backing store; `during` runs inside a lookup (the race).
    final class CountingStore: RecipientCertificateStore, @unchecked Sendable {
        let inner = MemoryRecipientStore()
        private let lock = NSLock()
        private var lookups = 0
        var during: (@Sendable () -> Void)?
        var failing = false
        var count: Int { lock.withLock { lookups } }
        func current(for address: String) throws -> StoredRecipientCertificate? {
            lock.withLock { lookups += 1 }
            if failing { throw RecipientStoreError(.unavailable, "db: connect: refused") }
            let value = try inner.current(for: address)
            during?()
            return value
        }
        func history(for address: String) throws -> [StoredRecipientCertificate] { try inner.history(for: address) }
        func upsert(_ c: StoredRecipientCertificate) throws -> RecipientCertificateUpsert { try inner.upsert(c) }
        func remove(address: String) throws -> Int { try inner.remove(address: address) }
        func list() throws -> [StoredRecipientCertificate] { try inner.list() }
        func logHarvestDecision(_ entry: HarvestLogEntry) throws { try inner.logHarvestDecision(entry) }
        func harvestLog(limit: Int) throws -> [HarvestLogEntry] { try inner.harvestLog(limit: limit) }
    }

    static func record(_ address: String, _ fingerprint: String, at date: Date) -> StoredRecipientCertificate {
        StoredRecipientCertificate(address: address, fingerprint: fingerprint, certificateDER: [1, 2, 3], subject: "s", issuer: "i",
                                   serialHex: "01", notBefore: date, notAfter: date + 86_400, source: .imported, addedAt: date)
    }

    @Test func answersFromTheCacheWithinTheStalenessThenAsksAgain() throws {
        let clock = Clock()
        let backing = CountingStore()
        try backing.inner.upsert(Self.record("a@x", "f1", at: clock.date))
        let hits = HitCounter()
        let cache = CachedRecipientStore(backing: backing, staleness: 10, events: RecipientStoreEvents(cacheLookup: { hits.add($0) }),
                                         clock: { clock.date })
        #expect(try cache.current(for: "A@X")?.fingerprint == "f1")
        #expect(try cache.current(for: "a@x")?.fingerprint == "f1")
        #expect(backing.count == 1)
        // Changed behind the cache's back (another gateway, its notification missed): seen once stale.
        _ = try backing.inner.remove(address: "a@x")
        clock.advance(9)
        #expect(try cache.current(for: "a@x") != nil)
        clock.advance(1)
        #expect(try cache.current(for: "a@x") == nil)
        #expect(backing.count == 2)
        // "No certificate" is cached too.
        #expect(try cache.current(for: "a@x") == nil)
        #expect(backing.count == 2)
        #expect(hits.values == [false, true, true, false, true])
    }

    @Test func aNotificationDropsOneAddressAndALostChannelDropsAll() throws {
        let clock = Clock()
        let backing = CountingStore()
        try backing.inner.upsert(Self.record("a@x", "f1", at: clock.date))
        try backing.inner.upsert(Self.record("b@x", "f2", at: clock.date))
        let cache = CachedRecipientStore(backing: backing, staleness: 3600, clock: { clock.date })
        _ = try cache.current(for: "a@x")
        _ = try cache.current(for: "b@x")
        _ = try backing.inner.remove(address: "a@x")
        cache.invalidate(address: "A@x")
        #expect(try cache.current(for: "a@x") == nil)
        #expect(try cache.current(for: "b@x")?.fingerprint == "f2")
        #expect(backing.count == 3)
        cache.invalidateAll()
        #expect(cache.count == 0)
        _ = try cache.current(for: "b@x")
        #expect(backing.count == 4)
    }

    @Test func writesThroughTheCacheAreSeenAtOnce() throws {
        let clock = Clock()
        let cache = CachedRecipientStore(backing: CountingStore(), staleness: 3600, clock: { clock.date })
        #expect(try cache.current(for: "a@x") == nil)
        try cache.upsert(Self.record("a@x", "f1", at: clock.date))
        #expect(try cache.current(for: "a@x")?.fingerprint == "f1")
        try cache.remove(address: "a@x")
        #expect(try cache.current(for: "a@x") == nil)
    }

    @Test func anAnswerFetchedBeforeAnInvalidationIsNotKept() throws {
        let clock = Clock()
        let backing = CountingStore()
        try backing.inner.upsert(Self.record("a@x", "f1", at: clock.date))
        let cache = CachedRecipientStore(backing: backing, staleness: 3600, clock: { clock.date })
        // The notification arrives while the lookup is on its way back with the old answer.
        backing.during = { [weak cache] in cache?.invalidate(address: "a@x") }
        #expect(try cache.current(for: "a@x")?.fingerprint == "f1")
        backing.during = nil
        #expect(cache.count == 0)
        _ = try cache.current(for: "a@x")
        #expect(backing.count == 2)
    }

    @Test func storeErrorsAreNotCached() throws {
        let clock = Clock()
        let backing = CountingStore()
        let cache = CachedRecipientStore(backing: backing, staleness: 3600, clock: { clock.date })
        backing.failing = true
        #expect(throws: RecipientStoreError.self) { try cache.current(for: "a@x") }
        #expect(throws: RecipientStoreError.self) { try cache.current(for: "a@x") }
        backing.failing = false
        #expect(try cache.current(for: "a@x") == nil)
        #expect(backing.count == 3)
    }

    @Test func theCacheIsBounded() throws {
        let clock = Clock()
        let cache = CachedRecipientStore(backing: CountingStore(), staleness: 3600, capacity: 10, clock: { clock.date })
        for i in 0..<25 { _ = try cache.current(for: "u\(i)@x") }
        #expect(cache.count <= 10)
    }

    final class HitCounter: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [Bool] = []
        func add(_ hit: Bool) { lock.withLock { list.append(hit) } }
        var values: [Bool] { lock.withLock { list } }
    }
}
