// SPDX-License-Identifier: Apache-2.0
import Foundation
import GRDB
import Policy
import SMIME

/// The embedded recipient certificate store: one SQLite file in WAL mode, through GRDB.
///
/// Why GRDB (not sqlite-nio): its API is synchronous, which is what libmilter's blocking worker
/// threads need (no event loop to hop to and wait for), its `DatabasePool` is `Sendable`, runs
/// reads concurrently and serialises writes, and its migrator versions the schema. It builds on
/// Linux against Debian's `libsqlite3-dev`.
///
/// Safety: every change is one transaction; WAL with SQLite's default locking survives a
/// process killed at any point (the last committed transaction is kept, a partial one is rolled
/// back on the next open). Other processes (the `certs` command while the milter runs) wait up to
/// `busyTimeout` for the write lock. At open, `PRAGMA quick_check` must say "ok".
public final class SQLiteRecipientStore: RecipientCertificateStore {
    /// The schema version this build writes (the number of migrations).
    public static let schemaVersion = 1

    public let path: String
    private let pool: DatabasePool

    /// Opens (creating when missing, mode 0600) the store at `path`, checks its integrity and
    /// brings its schema up to date.
    ///
    /// - Throws: `RecipientStoreError` `.corrupt` when the file is not a database or fails
    ///   `quick_check`, `.newerSchema` when a newer version wrote it, `.unavailable` otherwise.
    public init(path: String, busyTimeout: TimeInterval = 5) throws {
        self.path = path
        let existed = FileManager.default.fileExists(atPath: path)
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.label = "recipient-certificates"
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch let error as DatabaseError where [.SQLITE_NOTADB, .SQLITE_CORRUPT].contains(error.resultCode) {
            throw RecipientStoreError(.corrupt, "\(path): not a certificate store or damaged (\(error.message ?? "\(error.resultCode)"))")
        } catch {
            throw RecipientStoreError(.unavailable, "\(path): cannot open the certificate store: \(Self.words(error))")
        }
        if !existed {
            chmod(path, 0o600)
            // Made by root (`certs --recipients import`, `check-config` before the first start):
            // give it to the owner of its directory (the milter's StateDirectory), or the milter,
            // running as its own user, could not open it. SQLite gives its -wal and -shm files
            // the database file's owner itself.
            var directory = stat()
            let parent = (path as NSString).deletingLastPathComponent
            if geteuid() == 0, stat(parent.isEmpty ? "." : parent, &directory) == 0, directory.st_uid != 0 {
                _ = chown(path, directory.st_uid, directory.st_gid)
            }
        }
        do {
            let result = try pool.read { try String.fetchOne($0, sql: "PRAGMA quick_check") } ?? "no answer"
            guard result == "ok" else {
                throw RecipientStoreError(.corrupt, "\(path): the integrity check failed: \(result)")
            }
            let migrator = Self.migrator
            if try pool.read({ try migrator.hasBeenSuperseded($0) }) {
                throw RecipientStoreError(.newerSchema, "\(path): written by a newer smime-milter (schema newer than version \(Self.schemaVersion))")
            }
            try migrator.migrate(pool)
        } catch let error as RecipientStoreError {
            throw error
        } catch let error as DatabaseError where [.SQLITE_NOTADB, .SQLITE_CORRUPT].contains(error.resultCode) {
            throw RecipientStoreError(.corrupt, "\(path): not a certificate store or damaged (\(error.message ?? "\(error.resultCode)"))")
        } catch {
            throw RecipientStoreError(.unavailable, "\(path): cannot open the certificate store: \(Self.words(error))")
        }
    }

    /// The schema, one migration per version; never change a migration once released.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE certificate (
                    id INTEGER PRIMARY KEY,
                    address TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    der BLOB NOT NULL,
                    intermediates BLOB NOT NULL,
                    capabilities TEXT,
                    subject TEXT NOT NULL,
                    issuer TEXT NOT NULL,
                    serial TEXT NOT NULL,
                    not_before REAL NOT NULL,
                    not_after REAL NOT NULL,
                    source TEXT NOT NULL,
                    added_at REAL NOT NULL,
                    last_seen_at REAL NOT NULL,
                    is_current INTEGER NOT NULL,
                    UNIQUE (address, fingerprint)
                );
                CREATE INDEX certificate_current ON certificate (address, is_current);
                CREATE TABLE harvest_log (
                    id INTEGER PRIMARY KEY,
                    time REAL NOT NULL,
                    address TEXT NOT NULL,
                    fingerprint TEXT,
                    kept INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    queue_id TEXT
                );
                """)
        }
        return migrator
    }

    // MARK: RecipientCertificateStore

    public func current(for address: String) throws -> StoredRecipientCertificate? {
        try run {
            try pool.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM certificate WHERE address = ? AND is_current = 1",
                                 arguments: [address.lowercased()]).map(Self.record)
            }
        }
    }

    public func history(for address: String) throws -> [StoredRecipientCertificate] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM certificate WHERE address = ? ORDER BY not_before DESC, not_after DESC",
                                 arguments: [address.lowercased()]).map(Self.record)
            }
        }
    }

    @discardableResult
    public func upsert(_ certificate: StoredRecipientCertificate) throws -> RecipientCertificateUpsert {
        try run {
            try pool.write { db in
                let address = certificate.address.lowercased()
                if let same = try Row.fetchOne(db, sql: "SELECT id FROM certificate WHERE address = ? AND fingerprint = ?",
                                               arguments: [address, certificate.fingerprint]) {
                    // Seen again: newer capabilities win, an absent announcement keeps the known one.
                    try db.execute(sql: """
                        UPDATE certificate SET last_seen_at = ?, capabilities = COALESCE(?, capabilities) WHERE id = ?
                        """, arguments: [certificate.lastSeenAt.timeIntervalSince1970,
                                         certificate.capabilities.map(Self.text), same["id"] as Int64])
                    return .refreshed
                }
                let current = try Row.fetchOne(db, sql: "SELECT * FROM certificate WHERE address = ? AND is_current = 1",
                                               arguments: [address]).map(Self.record)
                var outcome = RecipientCertificateUpsert.inserted
                var makeCurrent = true
                if let current {
                    if certificate.isNewer(than: current) {
                        try db.execute(sql: "UPDATE certificate SET is_current = 0 WHERE address = ? AND is_current = 1",
                                       arguments: [address])
                        outcome = .replaced(previousFingerprint: current.fingerprint)
                    } else {
                        makeCurrent = false
                        outcome = .keptAsHistory
                    }
                }
                try db.execute(sql: """
                    INSERT INTO certificate (address, fingerprint, der, intermediates, capabilities, subject, issuer, serial,
                                             not_before, not_after, source, added_at, last_seen_at, is_current)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [address, certificate.fingerprint, Data(certificate.certificateDER),
                                     Data(IntermediatesBlob.encode(certificate.intermediatesDER)), certificate.capabilities.map(Self.text),
                                     certificate.subject, certificate.issuer, certificate.serialHex,
                                     certificate.notBefore.timeIntervalSince1970, certificate.notAfter.timeIntervalSince1970,
                                     certificate.source.rawValue, certificate.addedAt.timeIntervalSince1970,
                                     certificate.lastSeenAt.timeIntervalSince1970, makeCurrent])
                return outcome
            }
        }
    }

    @discardableResult
    public func remove(address: String) throws -> Int {
        try run {
            try pool.write { db in
                try db.execute(sql: "DELETE FROM certificate WHERE address = ?", arguments: [address.lowercased()])
                return db.changesCount
            }
        }
    }

    public func list() throws -> [StoredRecipientCertificate] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM certificate WHERE is_current = 1 ORDER BY address").map(Self.record)
            }
        }
    }

    public func logHarvestDecision(_ entry: HarvestLogEntry) throws {
        try run {
            try pool.write { db in
                try db.execute(sql: "INSERT INTO harvest_log (time, address, fingerprint, kept, reason, queue_id) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [entry.time.timeIntervalSince1970, entry.address, entry.fingerprint, entry.kept,
                                           entry.reason, entry.queueID])
            }
        }
    }

    public func harvestLog(limit: Int) throws -> [HarvestLogEntry] {
        try run {
            try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM harvest_log ORDER BY id DESC LIMIT ?", arguments: [max(0, limit)]).map { row in
                    HarvestLogEntry(time: Date(timeIntervalSince1970: row["time"]), address: row["address"],
                                    fingerprint: row["fingerprint"], kept: row["kept"], reason: row["reason"],
                                    queueID: row["queue_id"])
                }
            }
        }
    }

    /// `PRAGMA quick_check` now ("ok" when the file is sound).
    public func quickCheck() throws -> String {
        try run { try pool.read { try String.fetchOne($0, sql: "PRAGMA quick_check") } ?? "no answer" }
    }

    /// How many rows the certificate table has (current and history), for tests and `certs`.
    public func certificateCount() throws -> Int {
        try run { try pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM certificate") } ?? 0 }
    }

    // MARK: rows

    private static func record(_ row: Row) throws -> StoredRecipientCertificate {
        let capabilities: String? = row["capabilities"]
        return StoredRecipientCertificate(
            address: row["address"], fingerprint: row["fingerprint"], certificateDER: [UInt8](row["der"] as Data),
            intermediatesDER: try IntermediatesBlob.decode([UInt8](row["intermediates"] as Data)),
            capabilities: capabilities.map { SMIMECapabilities(algorithms: $0.split(separator: " ").map(String.init)) },
            subject: row["subject"], issuer: row["issuer"], serialHex: row["serial"],
            notBefore: Date(timeIntervalSince1970: row["not_before"]), notAfter: Date(timeIntervalSince1970: row["not_after"]),
            source: RecipientCertificateSource(rawValue: row["source"]) ?? .imported,
            addedAt: Date(timeIntervalSince1970: row["added_at"]), lastSeenAt: Date(timeIntervalSince1970: row["last_seen_at"]),
            isCurrent: row["is_current"])
    }

    /// Capabilities as space-separated OIDs.
    private static func text(_ capabilities: SMIMECapabilities) -> String {
        capabilities.algorithms.joined(separator: " ")
    }

    /// Runs a database operation, turning GRDB's errors into `RecipientStoreError`.
    private func run<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as RecipientStoreError {
            throw error
        } catch let error as DatabaseError where [.SQLITE_NOTADB, .SQLITE_CORRUPT].contains(error.resultCode) {
            throw RecipientStoreError(.corrupt, "\(path): the certificate store is damaged (\(error.message ?? "\(error.resultCode)"))")
        } catch {
            throw RecipientStoreError(.unavailable, "\(path): \(Self.words(error))")
        }
    }

    private static func words(_ error: Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "SQLite error \(error.resultCode)" }
        return "\(error)"
    }
}
