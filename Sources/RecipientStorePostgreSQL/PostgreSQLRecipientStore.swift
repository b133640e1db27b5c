// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy
import SMIME

/// The shared recipient certificate store: one PostgreSQL database for several gateways, through
/// libpq.
///
/// Why libpq (not postgres-nio): its calls block, which is what libmilter's worker threads
/// need (no event loop to hop to and wait for); it takes a host list and keeps the read-write
/// one (`target_session_attrs`), so failover to a promoted standby needs no code of ours; its
/// TLS is OpenSSL's, like the rest of our cryptography; LISTEN/NOTIFY is `PQnotifies`.
///
/// Concurrency between gateways: every change is one transaction under a transaction-scoped
/// advisory lock on the address, so two gateways harvesting for one address take turns; the
/// unique constraints (one row per address and fingerprint, one current row per address) are
/// the backstop. Every change notifies `smime_milter_certificates` with the address (sent at
/// commit), which the other gateways' read caches listen to.
public final class PostgreSQLRecipientStore: RecipientCertificateStore, @unchecked Sendable {
    public let options: PostgreSQLStoreOptions
    let pool: ConnectionPool
    private let events: RecipientStoreEvents

    /// Prepares the pool; no connection is made until the first operation (`checkSchema` makes one).
    public init(options: PostgreSQLStoreOptions, events: RecipientStoreEvents = .none) {
        self.options = options
        self.events = events
        pool = ConnectionPool(options: options, events: events)
    }

    /// The address, for messages (never the password).
    public var name: String { options.address.description }

    /// The schema version this build writes.
    public static var schemaVersion: Int { PostgreSQLSchema.version }

    /// Checks that the database answers and has this build's schema: `.newerSchema` for a
    /// newer one (the milter must not start), `.unavailable` for an older one or no answer.
    /// Returns the server that answered (`host:port`).
    @discardableResult
    public func checkSchema() throws -> String {
        try run("check") { connection in
            try PostgreSQLSchema.check(connection)
            return connection.server
        }
    }

    /// Applies the missing migrations (`smime-milter store migrate`).
    public func migrate() throws -> (from: Int, to: Int) {
        try run("migrate") { try PostgreSQLSchema.migrate($0) }
    }

    // MARK: RecipientCertificateStore

    public func current(for address: String) throws -> StoredRecipientCertificate? {
        try run("current") { connection in
            try connection.execute("SELECT \(Self.columns) FROM certificate WHERE address = $1 AND is_current",
                                   [address.lowercased()]).first.map(Self.record)
        }
    }

    public func history(for address: String) throws -> [StoredRecipientCertificate] {
        try run("history") { connection in
            try connection.execute("SELECT \(Self.columns) FROM certificate WHERE address = $1 ORDER BY not_before DESC, not_after DESC",
                                   [address.lowercased()]).map(Self.record)
        }
    }

    @discardableResult
    public func upsert(_ certificate: StoredRecipientCertificate) throws -> RecipientCertificateUpsert {
        let address = certificate.address.lowercased()
        return try run("upsert") { connection in
            try connection.transaction {
                // Writers for one address take turns (another gateway harvesting it right now).
                try connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [address])
                let capabilities = certificate.capabilities.map { $0.algorithms.joined(separator: " ") }
                if let same = try connection.execute("SELECT id FROM certificate WHERE address = $1 AND fingerprint = $2",
                                                     [address, certificate.fingerprint]).first?.first ?? nil {
                    try connection.execute("UPDATE certificate SET last_seen_at = $1, capabilities = COALESCE($2, capabilities) WHERE id = $3",
                                           [Self.time(certificate.lastSeenAt), capabilities, same])
                    try Self.notify(connection, address)
                    return .refreshed
                }
                let current = try connection.execute("SELECT \(Self.columns) FROM certificate WHERE address = $1 AND is_current FOR UPDATE",
                                                     [address]).first.map(Self.record)
                var outcome = RecipientCertificateUpsert.inserted
                var makeCurrent = true
                if let current {
                    if certificate.isNewer(than: current) {
                        try connection.execute("UPDATE certificate SET is_current = false WHERE address = $1 AND is_current", [address])
                        outcome = .replaced(previousFingerprint: current.fingerprint)
                    } else {
                        makeCurrent = false
                        outcome = .keptAsHistory
                    }
                }
                try connection.execute("""
                    INSERT INTO certificate (address, fingerprint, der, intermediates, capabilities, subject, issuer, serial,
                                             not_before, not_after, source, added_at, last_seen_at, is_current)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                    """, [address, certificate.fingerprint, ByteaText.encode(certificate.certificateDER),
                          ByteaText.encode(IntermediatesBlob.encode(certificate.intermediatesDER)), capabilities,
                          certificate.subject, certificate.issuer, certificate.serialHex,
                          Self.time(certificate.notBefore), Self.time(certificate.notAfter), certificate.source.rawValue,
                          Self.time(certificate.addedAt), Self.time(certificate.lastSeenAt), makeCurrent ? "true" : "false"])
                try Self.notify(connection, address)
                return outcome
            }
        }
    }

    @discardableResult
    public func remove(address: String) throws -> Int {
        let key = address.lowercased()
        return try run("remove") { connection in
            try connection.transaction {
                try connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [key])
                let removed = try connection.execute("DELETE FROM certificate WHERE address = $1 RETURNING id", [key]).count
                try Self.notify(connection, key)
                return removed
            }
        }
    }

    public func list() throws -> [StoredRecipientCertificate] {
        try run("list") { connection in
            try connection.execute("SELECT \(Self.columns) FROM certificate WHERE is_current ORDER BY address").map(Self.record)
        }
    }

    public func logHarvestDecision(_ entry: HarvestLogEntry) throws {
        _ = try run("log") { connection in
            try connection.execute("INSERT INTO harvest_log (time, address, fingerprint, kept, reason, queue_id) VALUES ($1, $2, $3, $4, $5, $6)",
                                   [Self.time(entry.time), entry.address, entry.fingerprint, entry.kept ? "true" : "false",
                                    entry.reason, entry.queueID])
        }
    }

    public func harvestLog(limit: Int) throws -> [HarvestLogEntry] {
        try run("harvest_log") { connection in
            try connection.execute("SELECT time, address, fingerprint, kept, reason, queue_id FROM harvest_log ORDER BY id DESC LIMIT $1",
                                   [String(max(0, limit))]).map { row in
                HarvestLogEntry(time: Date(timeIntervalSince1970: Double(row[0] ?? "0") ?? 0), address: row[1] ?? "",
                                fingerprint: row[2], kept: row[3] == "t", reason: row[4] ?? "", queueID: row[5])
            }
        }
    }

    /// How many rows the certificate table has (current and history), for tests and `store copy`.
    public func certificateCount() throws -> Int {
        try run("count") { Int(((try $0.execute("SELECT COUNT(*) FROM certificate").first?.first) ?? nil) ?? "0") ?? 0 }
    }

    /// Every row (current and history) and the whole harvest log, oldest first (`store copy`).
    public func everything() throws -> (certificates: [StoredRecipientCertificate], log: [HarvestLogEntry]) {
        let certificates = try run("copy") { connection in
            try connection.execute("SELECT \(Self.columns) FROM certificate ORDER BY id").map(Self.record)
        }
        return (certificates, try harvestLog(limit: Int(Int32.max)).reversed())
    }

    // MARK: rows

    private static let columns = """
        address, fingerprint, der, intermediates, capabilities, subject, issuer, serial, not_before, not_after, source, \
        added_at, last_seen_at, is_current
        """

    private static func record(_ row: [String?]) throws -> StoredRecipientCertificate {
        func text(_ i: Int) throws -> String {
            guard let value = row[i] else { throw RecipientStoreError(.corrupt, "a NULL where the store needs a value") }
            return value
        }
        func date(_ i: Int) throws -> Date { Date(timeIntervalSince1970: Double(try text(i)) ?? 0) }
        return StoredRecipientCertificate(
            address: try text(0), fingerprint: try text(1), certificateDER: try ByteaText.decode(try text(2)),
            intermediatesDER: try IntermediatesBlob.decode(try ByteaText.decode(try text(3))),
            capabilities: row[4].map { SMIMECapabilities(algorithms: $0.split(separator: " ").map(String.init)) },
            subject: try text(5), issuer: try text(6), serialHex: try text(7), notBefore: try date(8), notAfter: try date(9),
            source: RecipientCertificateSource(rawValue: try text(10)) ?? .imported, addedAt: try date(11),
            lastSeenAt: try date(12), isCurrent: row[13] == "t")
    }

    /// Seconds since 1970 exactly as a double (round-trips through double precision).
    private static func time(_ date: Date) -> String { "\(date.timeIntervalSince1970)" }

    private static func notify(_ connection: PostgreSQLConnection, _ address: String) throws {
        try connection.execute("SELECT pg_notify($1, $2)", [PostgreSQLSchema.channel, address])
    }

    /// Runs one operation on a pooled connection, timing it and turning failures into
    /// `RecipientStoreError` (kind counted for the metrics).
    func run<T>(_ operation: String, _ body: (PostgreSQLConnection) throws -> T) throws -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        do {
            let value = try pool.with(body)
            events.operation(operation, elapsed(), true)
            return value
        } catch let failure as PostgreSQLFailure {
            events.operation(operation, elapsed(), false)
            events.error(failure.kind.rawValue)
            throw RecipientStoreError(.unavailable, "\(name): \(failure.kind.rawValue): \(failure.message)")
        } catch let error as RecipientStoreError {
            events.operation(operation, elapsed(), false)
            events.error(error.kind == .newerSchema ? "newer_schema" : error.kind.rawValue)
            throw error
        }
    }
}
