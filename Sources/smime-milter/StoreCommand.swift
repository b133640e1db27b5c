// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Policy
import RecipientStorePostgreSQL
import RecipientStoreSQLite

/// `smime-milter store`: the shared store's schema and moving a store between SQLite and PostgreSQL.
struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Migrate the CertificateStore's schema, or copy a store to another (SQLite <-> PostgreSQL).",
        subcommands: [Migrate.self, Copy.self])

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the schema migrations this smime-milter knows to the configured PostgreSQL store (SQLite migrates itself).")

        @OptionGroup var options: ConfigOption

        func run() throws {
            do {
                let configuration = try ConfigurationParser.load(path: options.config)
                switch configuration.certificateStore {
                case .sqlite(let path):
                    _ = try SQLiteRecipientStore(path: path)
                    print("\(configuration.certificateStore): schema version \(SQLiteRecipientStore.schemaVersion) (SQLite stores migrate when opened)")
                case .postgresql(let address):
                    let store = PostgreSQLRecipientStore(options: try PostgreSQLStoreOptions.from(address, settings: configuration.storeSettings))
                    let (from, to) = try store.migrate()
                    print(from == to ? "\(address): schema version \(to), nothing to do" : "\(address): schema version \(from) -> \(to)")
                }
            } catch {
                FileHandle.standardError.write(Data("smime-milter: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
    }

    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy every certificate (current and history) and the harvest log from one store to another.",
            discussion: """
                FROM and TO are written like CertificateStore: sqlite:PATH or postgresql://USER@HOST[:PORT][,HOST[:PORT]]/DB.
                The password file and CA file of a PostgreSQL address come from --config (CertificateStorePasswordFile,
                CertificateStoreCAFile). A PostgreSQL target is migrated first. Copying again is harmless: a certificate
                already in the target is only refreshed.
                """)

        @Option(name: .shortAndLong, help: "A configuration whose CertificateStore* keys give the password and CA file.")
        var config: String?

        @Argument(help: "The store to read.") var from: String
        @Argument(help: "The store to write.") var to: String

        func run() throws {
            do {
                let settings = try config.map { try ConfigurationParser.load(path: $0).storeSettings } ?? CertificateStoreSettings()
                let directory = FileManager.default.currentDirectoryPath
                let source = try CertificateStoreSpec.parse(from, relativeTo: directory)
                let target = try CertificateStoreSpec.parse(to, relativeTo: directory)
                guard source != target else { throw CertificateStoreAddressError("FROM and TO are the same store") }
                if case .postgresql(let address) = target {
                    _ = try PostgreSQLRecipientStore(options: try PostgreSQLStoreOptions.from(address, settings: settings)).migrate()
                }
                let reader = try StoreRuntime.open(source, settings: settings, use: .command)
                let writer = try StoreRuntime.open(target, settings: settings, use: .command)
                let (certificates, log) = try Self.everything(reader)
                var outcomes: [String: Int] = [:]
                // Oldest first, so that "current" comes out as in the source (newer replaces older).
                for record in certificates.sorted(by: { $1.isNewer(than: $0) }) {
                    let outcome = try writer.upsert(record)
                    outcomes[RecipientCerts.words(outcome), default: 0] += 1
                }
                for entry in log { try writer.logHarvestDecision(entry) }
                print("\(source) -> \(target): \(certificates.count) certificate(s) (\(outcomes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))), \(log.count) harvest log entries")
            } catch {
                FileHandle.standardError.write(Data("smime-milter: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }

        /// Every certificate (current and history) and the harvest log, oldest first.
        static func everything(_ store: any RecipientCertificateStore) throws -> ([StoredRecipientCertificate], [HarvestLogEntry]) {
            if let store = store as? PostgreSQLRecipientStore { return try store.everything() }
            var certificates: [StoredRecipientCertificate] = []
            for current in try store.list() { certificates += try store.history(for: current.address) }
            return (certificates, try store.harvestLog(limit: Int(Int32.max)).reversed())
        }
    }
}
