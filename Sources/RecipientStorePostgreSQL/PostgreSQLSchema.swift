// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy

/// The shared store's schema, one migration per version; a released migration is never changed.
///
/// Versions are rows of `schema_version`; `smime-milter store migrate` applies the missing ones
/// under an advisory lock (two gateways migrating at once take turns). The milter itself does not
/// migrate: several gateways share the database, and which binary may change it is the
/// operator's decision.
enum PostgreSQLSchema {
    /// The advisory lock key of migrations ("smimemig").
    static let migrationLock: Int64 = 0x736D_696D_656D_6967
    /// The channel change notifications go to; the payload is the address ("*" for everything).
    static let channel = "smime_milter_certificates"

    static let migrations: [String] = [
        // 1: certificates with history and source, the harvest log.
        """
        CREATE TABLE certificate (
            id bigserial PRIMARY KEY,
            address text NOT NULL,
            fingerprint text NOT NULL,
            der bytea NOT NULL,
            intermediates bytea NOT NULL,
            capabilities text,
            subject text NOT NULL,
            issuer text NOT NULL,
            serial text NOT NULL,
            not_before double precision NOT NULL,
            not_after double precision NOT NULL,
            source text NOT NULL,
            added_at double precision NOT NULL,
            last_seen_at double precision NOT NULL,
            is_current boolean NOT NULL,
            UNIQUE (address, fingerprint)
        );
        CREATE UNIQUE INDEX certificate_one_current ON certificate (address) WHERE is_current;
        CREATE TABLE harvest_log (
            id bigserial PRIMARY KEY,
            time double precision NOT NULL,
            address text NOT NULL,
            fingerprint text,
            kept boolean NOT NULL,
            reason text NOT NULL,
            queue_id text
        );
        """,
        // 2: the revocation cache shared by the gateways (OCSP responses, CRLs, until nextUpdate).
        """
        CREATE TABLE revocation_cache (
            key text PRIMARY KEY,
            der bytea NOT NULL,
            expires double precision NOT NULL,
            updated_at double precision NOT NULL
        );
        """,
    ]

    /// The version this build writes.
    static var version: Int { migrations.count }

    /// The database's schema version (0: none yet).
    static func currentVersion(_ connection: PostgreSQLConnection) throws -> Int {
        let exists = try connection.execute("SELECT to_regclass('schema_version') IS NOT NULL")
        guard exists.first?.first == "t" else { return 0 }
        let value = try connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").first?.first ?? nil
        return Int(value ?? "0") ?? 0
    }

    /// Applies the missing migrations; returns the versions before and after.
    static func migrate(_ connection: PostgreSQLConnection) throws -> (from: Int, to: Int) {
        try connection.transaction {
            try connection.execute("SELECT pg_advisory_xact_lock($1)", [String(migrationLock)])
            try connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            let from = try currentVersion(connection)
            guard from <= version else { throw newer(from) }
            for index in from..<version {
                try connection.execute(migrations[index])
                try connection.execute("INSERT INTO schema_version (version) VALUES ($1)", [String(index + 1)])
            }
            return (from, version)
        }
    }

    /// The error for a database this build must not use.
    static func check(_ connection: PostgreSQLConnection) throws {
        let found = try currentVersion(connection)
        if found > version { throw newer(found) }
        if found < version {
            throw RecipientStoreError(.unavailable, "the database has schema version \(found), this smime-milter needs \(version): run smime-milter store migrate --config FILE")
        }
    }

    static func newer(_ found: Int) -> RecipientStoreError {
        RecipientStoreError(.newerSchema, "the database has schema version \(found), newer than version \(version) that this smime-milter knows: upgrade smime-milter (it does not start on a newer schema)")
    }
}
