// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy
import SMIME

/// The revocation cache in the shared store: what one gateway fetched from an OCSP responder or
/// a CRL distribution point, the others reuse until its nextUpdate. Best effort, as the
/// protocol says: errors count in the metrics and the checker fetches as without it.
public final class PostgreSQLRevocationStore: SharedRevocationStore, @unchecked Sendable {
    private let store: PostgreSQLRecipientStore

    /// Uses the certificate store's pool (the same database and time budget).
    public init(store: PostgreSQLRecipientStore) {
        self.store = store
    }

    public func load(_ key: String) -> (der: [UInt8], expires: Date)? {
        guard let row = try? store.revocationRow(key), let der = try? ByteaText.decode(row.der) else { return nil }
        return (der, Date(timeIntervalSince1970: row.expires))
    }

    public func save(_ key: String, der: [UInt8], expires: Date) {
        try? store.saveRevocation(key, der: ByteaText.encode(der), expires: expires.timeIntervalSince1970)
    }

    public func delete(_ key: String) {
        try? store.deleteRevocation(key)
    }
}

extension PostgreSQLRecipientStore {
    func revocationRow(_ key: String) throws -> (der: String, expires: Double)? {
        try run("revocation_load") { connection in
            guard let row = try connection.execute("SELECT der, expires FROM revocation_cache WHERE key = $1", [key]).first,
                  let der = row[0], let expires = row[1].flatMap(Double.init) else { return nil }
            return (der, expires)
        }
    }

    func saveRevocation(_ key: String, der: String, expires: Double) throws {
        _ = try run("revocation_save") { connection in
            // Expired rows of any key go with the write (the table stays as big as what is in use).
            try connection.execute("""
                INSERT INTO revocation_cache (key, der, expires, updated_at) VALUES ($1, $2, $3, $4)
                ON CONFLICT (key) DO UPDATE SET der = EXCLUDED.der, expires = EXCLUDED.expires, updated_at = EXCLUDED.updated_at
                """, [key, der, "\(expires)", "\(Date().timeIntervalSince1970)"])
            try connection.execute("DELETE FROM revocation_cache WHERE expires < $1", ["\(Date().timeIntervalSince1970 - 86_400)"])
        }
    }

    func deleteRevocation(_ key: String) throws {
        _ = try run("revocation_delete") { try $0.execute("DELETE FROM revocation_cache WHERE key = $1", [key]) }
    }
}
