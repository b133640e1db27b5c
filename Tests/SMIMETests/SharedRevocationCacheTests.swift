// SPDX-License-Identifier: Apache-2.0
import Foundation
@testable import SMIME
import Testing

/// The revocation cache over a store shared by several gateways (PostgreSQL in the milter; a
/// dictionary here): what one process fetched, another reads; a refused entry is dropped there.
@Suite struct SharedRevocationCacheTests {
    final class DictionaryStore: SharedRevocationStore, @unchecked Sendable {
        private let lock = NSLock()
        private var rows: [String: (der: [UInt8], expires: Date)] = [:]
        private(set) var loads = 0
        func load(_ key: String) -> (der: [UInt8], expires: Date)? { lock.withLock { loads += 1; return rows[key] } }
        func save(_ key: String, der: [UInt8], expires: Date) { lock.withLock { rows[key] = (der, expires) } }
        func delete(_ key: String) { _ = lock.withLock { rows.removeValue(forKey: key) } }
        var count: Int { lock.withLock { rows.count } }
    }

    @Test func anotherGatewayReadsWhatOneFetchedAndNothingGoesToDisk() throws {
        let shared = DictionaryStore()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rc-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let a = RevocationCache(directory: directory, shared: shared)
        a.store("ocsp|u|1", der: [1, 2, 3], expires: Date().addingTimeInterval(600))
        #expect(shared.count == 1)
        #expect(!FileManager.default.fileExists(atPath: directory))
        let b = RevocationCache(directory: directory, shared: shared)
        let found = b.lookup("ocsp|u|1")
        #expect(found?.der == [1, 2, 3] && found?.origin == .shared)
        // Kept in b's memory: the next lookup does not ask the shared store again.
        let loads = shared.loads
        #expect(b.lookup("ocsp|u|1")?.origin == .memory)
        #expect(shared.loads == loads)
        // Refused by b's verification: dropped for everyone.
        b.remove("ocsp|u|1")
        #expect(shared.count == 0)
        #expect(RevocationCache(shared: shared).lookup("ocsp|u|1") == nil)
    }
}
