// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A `RecipientCertificateStore` in memory, with the same rules as the SQLite one: for tests
/// of the policy and the binding (which need no database), never for production (nothing
/// survives a restart).
public final class MemoryRecipientStore: RecipientCertificateStore, @unchecked Sendable {
    private let lock = NSLock()
    private var certificates: [StoredRecipientCertificate] = []
    private var log: [HarvestLogEntry] = []

    public init() {}

    public func current(for address: String) throws -> StoredRecipientCertificate? {
        let key = address.lowercased()
        return lock.withLock { certificates.first { $0.address == key && $0.isCurrent } }
    }

    public func history(for address: String) throws -> [StoredRecipientCertificate] {
        let key = address.lowercased()
        return lock.withLock {
            certificates.filter { $0.address == key }.sorted { $0.isNewer(than: $1) }
        }
    }

    @discardableResult
    public func upsert(_ certificate: StoredRecipientCertificate) throws -> RecipientCertificateUpsert {
        lock.withLock {
            var incoming = certificate
            incoming.address = certificate.address.lowercased()
            if let same = certificates.firstIndex(where: { $0.address == incoming.address && $0.fingerprint == incoming.fingerprint }) {
                certificates[same].lastSeenAt = incoming.lastSeenAt
                if let capabilities = incoming.capabilities { certificates[same].capabilities = capabilities }
                return .refreshed
            }
            guard let index = certificates.firstIndex(where: { $0.address == incoming.address && $0.isCurrent }) else {
                incoming.isCurrent = true
                certificates.append(incoming)
                return .inserted
            }
            if incoming.isNewer(than: certificates[index]) {
                let previous = certificates[index].fingerprint
                certificates[index].isCurrent = false
                incoming.isCurrent = true
                certificates.append(incoming)
                return .replaced(previousFingerprint: previous)
            }
            incoming.isCurrent = false
            certificates.append(incoming)
            return .keptAsHistory
        }
    }

    @discardableResult
    public func remove(address: String) throws -> Int {
        let key = address.lowercased()
        return lock.withLock {
            let before = certificates.count
            certificates.removeAll { $0.address == key }
            return before - certificates.count
        }
    }

    public func list() throws -> [StoredRecipientCertificate] {
        lock.withLock { certificates.filter(\.isCurrent).sorted { $0.address < $1.address } }
    }

    public func logHarvestDecision(_ entry: HarvestLogEntry) throws {
        lock.withLock { log.append(entry) }
    }

    public func harvestLog(limit: Int) throws -> [HarvestLogEntry] {
        lock.withLock { Array(log.suffix(max(0, limit)).reversed()) }
    }
}
