// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy
import RecipientStorePostgreSQL
import RecipientStoreSQLite
import SMIME

/// Opens the certificate store a configuration (or a `store copy` address) names: SQLite, or
/// PostgreSQL behind its local read cache and change listener. The rest of the program sees
/// only `RecipientCertificateStore`.
enum StoreRuntime {
    /// How the store is used: by the milter (cached, listened to) or by a command (direct).
    enum Use {
        case milter
        case command
    }

    /// The store of `configuration`. For PostgreSQL the schema is checked: a newer one is an
    /// error (the milter does not start), an older one too (run `store migrate`); a database
    /// that does not answer now is only reported to `noAnswer` when that is given (the milter
    /// starts and tempfails the mail that needs the store until it answers).
    static func open(_ configuration: Configuration, use: Use, noAnswer: ((String) -> Void)? = nil) throws
        -> any RecipientCertificateStore {
        try open(configuration.certificateStore, settings: configuration.storeSettings, use: use, noAnswer: noAnswer)
    }

    static func open(_ spec: CertificateStoreSpec, settings: CertificateStoreSettings, use: Use,
                     noAnswer: ((String) -> Void)? = nil) throws -> any RecipientCertificateStore {
        switch spec {
        case .sqlite(let path):
            return try SQLiteRecipientStore(path: path)
        case .postgresql(let address):
            let options = try PostgreSQLStoreOptions.from(address, settings: settings)
            let events = use == .milter ? MilterMetrics.storeEvents : .none
            let store = PostgreSQLRecipientStore(options: options, events: events)
            do {
                try store.checkSchema()
            } catch let error as RecipientStoreError where error.kind == .unavailable && isNoAnswer(error) && noAnswer != nil {
                noAnswer?("CertificateStore \(address): does not answer now (\(error)); mail that needs it is tempfailed until it does")
            }
            guard use == .milter else { return store }
            let listenerBox = ListenerBox()
            let cache = CachedRecipientStore(backing: store, staleness: settings.staleness, events: events, companion: listenerBox)
            listenerBox.listener = PostgreSQLChangeListener(options: options, cache: cache, events: events)
            return cache
        }
    }

    /// The shared revocation cache when the store is PostgreSQL (nil for SQLite, or when the
    /// password file cannot be read: then the cache stays in RevocationCacheDir).
    static func sharedRevocationStore(_ configuration: Configuration) -> (any SharedRevocationStore)? {
        guard case .postgresql(let address) = configuration.certificateStore,
              let options = try? PostgreSQLStoreOptions.from(address, settings: configuration.storeSettings) else { return nil }
        return PostgreSQLRevocationStore(store: PostgreSQLRecipientStore(options: options, events: MilterMetrics.storeEvents))
    }

    /// Whether a store error means "no answer" (connection, time budget) rather than a schema problem.
    static func isNoAnswer(_ error: RecipientStoreError) -> Bool {
        ["connect", "timeout", "connection", "pool_exhausted"].contains { error.message.contains(": \($0): ") }
    }

    /// `check-config` and `certs`: which store, and whether it answers.
    static func describe(_ configuration: Configuration) -> (line: String, problem: String?) {
        let spec = configuration.certificateStore
        do {
            let store = try open(configuration, use: .command)
            let count = try store.list().count
            switch spec {
            case .sqlite:
                return ("store \(spec): answers, \(count) address(es) with a certificate", nil)
            case .postgresql:
                let server = (try? (store as? PostgreSQLRecipientStore)?.checkSchema()) ?? "?"
                return ("store \(spec): PostgreSQL, answers (primary \(server), schema version \(PostgreSQLRecipientStore.schemaVersion)), \(count) address(es) with a certificate", nil)
            }
        } catch {
            return ("store \(spec): does not answer", "CertificateStore: \(error)")
        }
    }
}

/// Holds the change listener for the cache (the cache keeps it alive, the listener holds the
/// cache weakly; releasing the cache at a reload stops the listener).
final class ListenerBox: @unchecked Sendable {
    var listener: PostgreSQLChangeListener?
}
