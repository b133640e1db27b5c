// SPDX-License-Identifier: Apache-2.0
import Foundation
import SMIME

/// `RecipientCertificateDir` and `certs --recipients import`: partners' certificates from PEM
/// files into the store.
public enum RecipientCertificateImport {
    /// What loading found.
    public struct Report: Sendable, Equatable {
        /// (address, what the store did) for every address of every certificate loaded.
        public var stored: [(address: String, outcome: RecipientCertificateUpsert)] = []
        /// Files or certificates that were skipped and why.
        public var problems: [String] = []

        public static func == (a: Report, b: Report) -> Bool {
            a.problems == b.problems && a.stored.map(\.address) == b.stored.map(\.address)
                && a.stored.map(\.outcome) == b.stored.map(\.outcome)
        }
    }

    /// Stores the certificate of one PEM text: the first certificate is the recipient's, the
    /// ones after it its intermediates; it is kept for every address it names.
    public static func importPEM(_ pem: [UInt8], name: String, source: RecipientCertificateSource,
                                 into store: any RecipientCertificateStore, at time: Date) throws -> Report {
        var report = Report()
        let certificates: [RecipientCertificate]
        do {
            certificates = try RecipientCertificate.certificates(pem: pem)
        } catch {
            report.problems.append("\(name): \(error)")
            return report
        }
        guard !certificates.isEmpty else {
            report.problems.append("\(name): no PEM certificate")
            return report
        }
        return try importCertificates(certificates, name: name, source: source, into: store, at: time)
    }

    /// Stores `certificates` (the recipient's first, then its intermediates) for every address
    /// the first one names; a CA certificate or one without an address is refused.
    public static func importCertificates(_ certificates: [RecipientCertificate], name: String, source: RecipientCertificateSource,
                                          into store: any RecipientCertificateStore, at time: Date) throws -> Report {
        var report = Report()
        guard let leaf = certificates.first else {
            report.problems.append("\(name): no certificate")
            return report
        }
        guard !leaf.info.isCA else {
            report.problems.append("\(name): the first certificate is a CA certificate, not a recipient's")
            return report
        }
        guard !leaf.info.addresses.isEmpty else {
            report.problems.append("\(name): the certificate names no e-mail address")
            return report
        }
        for record in StoredRecipientCertificate.records(for: leaf, intermediates: Array(certificates.dropFirst()),
                                                         source: source, at: time) {
            report.stored.append((record.address, try store.upsert(record)))
        }
        return report
    }

    /// Loads every regular, non-hidden file of `directory` (sorted by name).
    public static func loadDirectory(_ directory: String, into store: any RecipientCertificateStore, at time: Date) throws -> Report {
        var report = Report()
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasPrefix(".") }.sorted()
        } catch {
            throw RecipientStoreError(.unavailable, "RecipientCertificateDir \(directory): cannot list the directory")
        }
        for name in names.prefix(10_000) {
            let path = directory + "/" + name
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else {
                report.problems.append("\(path): unreadable or larger than 1 MB")
                continue
            }
            let one = try importPEM([UInt8](data), name: path, source: .directory, into: store, at: time)
            report.stored += one.stored
            report.problems += one.problems
        }
        return report
    }
}
