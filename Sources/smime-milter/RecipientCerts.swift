// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy
import SMIME

/// `smime-milter certs --recipients ...`: the recipient certificate store the configuration names.
/// Exit status: 0 done, 1 nothing found (export/remove/history of an unknown address), 2 errors.
enum RecipientCerts {
    static func run(configPath: String, action: [String], json: Bool) -> Int32 {
        do {
            let configuration = try ConfigurationParser.load(path: configPath)
            let store = try StoreRuntime.open(configuration, use: .command)
            let verb = action.first?.lowercased() ?? "list"
            let argument = action.dropFirst().first
            guard action.count <= 2, (argument == nil) == ["list", "log", "sync"].contains(verb) else {
                return fail("usage: certs --recipients list | import FILE | remove ADDRESS | export ADDRESS | history ADDRESS | log | sync")
            }
            switch verb {
            case "list":
                if !json { FileHandle.standardError.write(Data("smime-milter: \(StoreRuntime.describe(configuration).line)\n".utf8)) }
                print(render(try store.list(), check: try check(configuration), json: json))
                return 0
            case "history":
                let history = try store.history(for: argument ?? "")
                print(render(history, check: try check(configuration), json: json))
                return history.isEmpty ? 1 : 0
            case "import":
                let path = argument ?? ""
                guard let data = FileManager.default.contents(atPath: path) else { return fail("\(path): cannot read the file") }
                let report = try RecipientCertificateImport.importPEM([UInt8](data), name: path, source: .imported,
                                                                      into: store, at: Date())
                for problem in report.problems { FileHandle.standardError.write(Data("smime-milter: \(problem)\n".utf8)) }
                for item in report.stored { print("\(item.address)\t\(words(item.outcome))") }
                return report.stored.isEmpty ? 2 : 0
            case "remove":
                let removed = try store.remove(address: argument ?? "")
                print("\(argument ?? "")\tremoved \(removed) certificate\(removed == 1 ? "" : "s")")
                return removed == 0 ? 1 : 0
            case "export":
                guard let pem = try store.export(address: argument ?? "") else {
                    return fail("\(argument ?? ""): no certificate in \(configuration.certificateStore)", status: 1)
                }
                print(pem, terminator: "")
                return 0
            case "log":
                let iso = ISO8601DateFormatter()
                for entry in try store.harvestLog(limit: 100) {
                    print([iso.string(from: entry.time), entry.address, entry.kept ? "kept" : "refused", entry.queueID ?? "-",
                           entry.reason].joined(separator: "\t"))
                }
                return 0
            case "sync":
                return syncFromDirectory(configuration, store: store)
            default:
                return fail("unknown action \(verb) (list, import, remove, export, history, log, sync)")
            }
        } catch {
            return fail("\(error)")
        }
    }

    /// `certs --recipients sync`: every certificate `RecipientCertificateSource` holds, stored
    /// with source ldap (a certificate already there is only refreshed). Exit 0, 1 when some
    /// value was refused (each said on standard error), 75 when the directory cannot be read
    /// (nothing is changed then), 2 on a configuration error.
    static func syncFromDirectory(_ configuration: Configuration, store: any RecipientCertificateStore) -> Int32 {
        guard let url = configuration.lifecycle.recipientCertificateSource else {
            return fail("RecipientCertificateSource is not set")
        }
        let values: [(dn: String, attribute: String, bytes: [UInt8])]
        do {
            values = try DirectorySource.configured(url: url, settings: configuration.lifecycle)
                .values(defaultAttributes: ["userSMIMECertificate", "userCertificate;binary"])
        } catch let failure as DirectorySource.Failure where failure.description.hasPrefix("cannot read IdentitySourceSecretFile") {
            return fail(failure.description)
        } catch {
            return fail("certs --recipients sync: the directory could not be read, nothing is changed: \(error)", status: 75)
        }
        var refused = 0, stored = 0
        let now = Date()
        for value in values {
            let name = "\(value.dn) \(value.attribute)"
            do {
                let certificates = try RecipientCertificate.certificates(directoryValue: value.bytes)
                let report = try RecipientCertificateImport.importCertificates(certificates, name: name, source: .ldap,
                                                                               into: store, at: now)
                for problem in report.problems { FileHandle.standardError.write(Data("smime-milter: \(problem)\n".utf8)) }
                refused += report.problems.count
                for item in report.stored { print("\(item.address)\t\(words(item.outcome))") }
                stored += report.stored.count
            } catch {
                FileHandle.standardError.write(Data("smime-milter: \(name): \(error)\n".utf8))
                refused += 1
            }
        }
        FileHandle.standardError.write(Data(("smime-milter: certs --recipients sync: \(values.count) value\(values.count == 1 ? "" : "s") "
            + "from the directory, \(stored) stored, \(refused) refused\n").utf8))
        return refused > 0 ? 1 : 0
    }

    /// The point-of-use check with the configured TrustAnchors; nil without them.
    static func check(_ configuration: Configuration) throws -> RecipientCertificateCheck? {
        guard let anchors = configuration.trustAnchors else { return nil }
        let trust = try TrustStore(anchors: [anchors], crlDirectory: configuration.crlDir)
        guard let checker = RevocationRuntime.checker(configuration, trust: trust) else {
            return RecipientCertificateCheck(trust: trust)
        }
        return RecipientCertificateCheck(
            trust: trust, revocation: RecipientRevocation(checker: checker, acceptUnknown: configuration.onRevocationUnknown == .accept))
    }

    static func render(_ records: [StoredRecipientCertificate], check: RecipientCertificateCheck?, json: Bool) -> String {
        let iso = ISO8601DateFormatter()
        let now = Date()
        let rows: [(StoredRecipientCertificate, String, String)] = records.map { record in
            let parsed = try? record.parsed()
            let key = parsed?.certificate.info.keyDescription ?? "unreadable"
            let usable: String
            if let check, let parsed {
                usable = check.problem(with: parsed.certificate, intermediates: parsed.intermediates, at: now).map { "no (\($0))" } ?? "yes"
            } else {
                usable = parsed == nil ? "no (unreadable)" : "unknown (no TrustAnchors)"
            }
            return (record, key, usable)
        }
        if json {
            let items: [[String: Any]] = rows.map { record, key, usable in
                [
                    "address": record.address, "fingerprint_sha256": record.fingerprint, "subject": record.subject,
                    "issuer": record.issuer, "serial": record.serialHex, "key": key,
                    "not_before": iso.string(from: record.notBefore), "not_after": iso.string(from: record.notAfter),
                    "source": record.source.rawValue, "current": record.isCurrent, "usable": usable,
                    "capabilities": record.capabilities?.algorithms ?? [], "added": iso.string(from: record.addedAt),
                    "last_seen": iso.string(from: record.lastSeenAt),
                ]
            }
            let data = (try? JSONSerialization.data(withJSONObject: ["recipients": items], options: [.prettyPrinted, .sortedKeys])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
        var lines = ["ADDRESS\tNOT-AFTER\tKEY\tSOURCE\tCURRENT\tGCM\tUSABLE\tISSUER"]
        for (record, key, usable) in rows {
            lines.append([record.address, iso.string(from: record.notAfter), key, record.source.rawValue,
                          record.isCurrent ? "yes" : "no", record.capabilities?.announcesAES256GCM == true ? "yes" : "no",
                          usable, record.issuer].joined(separator: "\t"))
        }
        return lines.joined(separator: "\n")
    }

    static func words(_ outcome: RecipientCertificateUpsert) -> String {
        switch outcome {
        case .inserted: return "imported"
        case .replaced(let previous): return "imported (replaces \(previous.prefix(16)), kept as history)"
        case .refreshed: return "already there"
        case .keptAsHistory: return "kept as history (the current certificate is newer)"
        }
    }

    static func fail(_ message: String, status: Int32 = 2) -> Int32 {
        FileHandle.standardError.write(Data("smime-milter: \(message)\n".utf8))
        return status
    }
}

extension RecipientCerts {
    /// What `check-config` says about encryption: the table, the store, the archive certificate.
    /// Only when an EncryptionTable is configured (otherwise nothing of it is used).
    static func checkConfiguration(_ configuration: Configuration) -> (lines: [String], problems: [String]) {
        guard let table = configuration.encryptionTable else { return ([], []) }
        var lines = ["encryption: \(table.rules.count) rule\(table.rules.count == 1 ? "" : "s") in \(table.file)"]
        var problems: [String] = []
        do {
            if case .sqlite(let path) = configuration.certificateStore, !FileManager.default.fileExists(atPath: path) {
                let parent = (path as NSString).deletingLastPathComponent
                guard FileManager.default.fileExists(atPath: parent.isEmpty ? "." : parent) else {
                    throw RecipientStoreError(.unavailable, "\(path): the directory \(parent) does not exist")
                }
                lines.append("  store \(configuration.certificateStore): not there yet (made at start or by certs --recipients import)")
            } else {
                let (line, problem) = StoreRuntime.describe(configuration)
                lines.append("  " + line)
                if let problem { problems.append(problem) }
            }
        } catch {
            problems.append("CertificateStore: \(error)")
        }
        let check: RecipientCertificateCheck?
        do {
            check = try Self.check(configuration)
            if check == nil { problems.append("EncryptionTable needs TrustAnchors: without them no recipient certificate is usable") }
        } catch {
            check = nil
            problems.append("TrustAnchors: \(error)")
        }
        if let path = configuration.archiveCertificate {
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                let all = try RecipientCertificate.certificates(pem: [UInt8](data))
                guard let archive = all.first else { throw RecipientStoreError(.invalid, "no PEM certificate") }
                if let check, let problem = check.problem(with: archive, intermediates: Array(all.dropFirst()), at: Date()) {
                    problems.append("ArchiveCertificate \(path): \(problem)")
                } else {
                    lines.append("  archive: \(archive)")
                }
            } catch {
                problems.append("ArchiveCertificate \(path): \(error)")
            }
        }
        return (lines, problems)
    }
}
