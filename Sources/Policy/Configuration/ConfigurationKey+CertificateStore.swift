// SPDX-License-Identifier: Apache-2.0
import Foundation

/// How the milter uses a shared (PostgreSQL) certificate store: its password and CA, the pool,
/// the time budget, the read cache's staleness and what a store that cannot answer does to mail.
/// The SQLite store uses only `onStoreError`.
public struct CertificateStoreSettings: Sendable, Equatable {
    /// `CertificateStorePasswordFile`: the database user's password (first line), never logged.
    public var passwordFile: String?
    /// `CertificateStoreCAFile`: the CA that issued the database server's certificate; with it
    /// the connection is TLS with `sslmode=verify-full`.
    public var caFile: String?
    /// `CertificateStorePoolSize`: connections kept open (libmilter's worker threads share them).
    public var poolSize: Int = 8
    /// `CertificateStoreTimeout`: seconds one lookup may take (connecting, waiting for a pooled
    /// connection, the statement); beyond it the store has not answered.
    public var timeout: Double = 2
    /// `CertificateStoreStaleness`: seconds a cached lookup may be used without the database
    /// (the bound when a change notification is missed).
    public var staleness: Double = 60
    /// `OnStoreError`: an `encrypt` recipient when the store cannot answer.
    public var onStoreError: StoreErrorAction = .tempfail

    public init() {}
}

/// `OnStoreError`: what the store not answering does to mail for an `encrypt` recipient (a
/// `require` recipient is always tempfailed: it never gets plaintext).
public enum StoreErrorAction: String, Sendable, Equatable, CaseIterable {
    /// 4xx: the MTA keeps the mail and retries.
    case tempfail
    /// Send it as if the recipient had no certificate (signed, not encrypted).
    case plaintext
}

/// Keys for the certificate store beyond its address (`CertificateStore` is with the encryption keys).
extension ConfigurationKey {
    static let certificateStore: [ConfigurationKey] = [
        ConfigurationKey(
            name: "CertificateStorePasswordFile",
            syntax: "PATH",
            defaultValue: "none (no password, or ~/.pgpass of the milter's user)",
            doc: "A file whose first line is the PostgreSQL user's password, for a postgresql:// CertificateStore; read at start and reload, never logged or shown.",
            apply: { value, context, config in config.storeSettings.passwordFile = try context.path(value) },
            show: { $0.storeSettings.passwordFile }
        ),
        ConfigurationKey(
            name: "CertificateStoreCAFile",
            syntax: "PATH",
            defaultValue: "none (no TLS to the database)",
            doc: "PEM CA certificate(s) of the PostgreSQL server: with it the store connects with TLS, sslmode=verify-full (the server's name must match its certificate).",
            apply: { value, context, config in config.storeSettings.caFile = try context.path(value) },
            show: { $0.storeSettings.caFile }
        ),
        ConfigurationKey(
            name: "CertificateStorePoolSize",
            syntax: "COUNT",
            defaultValue: "8",
            doc: "Connections to a postgresql:// CertificateStore the milter keeps open and shares between libmilter's worker threads (1 to 256).",
            apply: { value, _, config in
                guard let n = Int(value), (1...256).contains(n) else { throw ValueProblem("expected a number of connections from 1 to 256") }
                config.storeSettings.poolSize = n
            },
            show: { String($0.storeSettings.poolSize) }
        ),
        ConfigurationKey(
            name: "CertificateStoreTimeout",
            syntax: "SECONDS",
            defaultValue: "2",
            doc: "The time budget of one lookup in a postgresql:// CertificateStore (connect_timeout, statement_timeout, waiting for a pooled connection); beyond it the store has not answered (OnStoreError).",
            apply: { value, _, config in config.storeSettings.timeout = try ValueParsers.seconds(value, range: 1...60) },
            show: { String(Int($0.storeSettings.timeout)) }
        ),
        ConfigurationKey(
            name: "CertificateStoreStaleness",
            syntax: "SECONDS",
            defaultValue: "60",
            doc: "How long a lookup cached from a postgresql:// CertificateStore is used: changes made on another gateway are seen at once through LISTEN/NOTIFY, and within this many seconds when a notification is missed.",
            apply: { value, _, config in config.storeSettings.staleness = try ValueParsers.seconds(value, range: 1...3600) },
            show: { String(Int($0.storeSettings.staleness)) }
        ),
        ConfigurationKey(
            name: "OnStoreError",
            syntax: "tempfail | plaintext",
            defaultValue: "tempfail",
            doc: "Mail for an encrypt recipient when the CertificateStore cannot answer: tempfail (4xx, retried) or plaintext (signed, not encrypted); a require recipient is always tempfailed.",
            apply: { value, _, config in config.storeSettings.onStoreError = try ValueParsers.choice(value, StoreErrorAction.self) },
            show: { $0.storeSettings.onStoreError.rawValue }
        ),
    ]
}
