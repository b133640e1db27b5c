// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy
import SMIME

extension LoadedSetup {
    /// The encryption and harvesting setup: the store opened (`CertificateStore`),
    /// `RecipientCertificateDir` loaded into it, the point-of-use check on `TrustAnchors`, the
    /// archive certificate. With an `EncryptionTable` every failure here is an error (the milter
    /// does not start; a reload keeps the setup in force): mail that must be encrypted cannot be
    /// handled without the store. Without the table only harvesting needs the store, and a store
    /// that cannot open is a problem that turns harvesting off.
    static func makeEncryption(_ configuration: Configuration, now: Date, problems: inout [String]) throws -> EncryptionSetup? {
        let policy = configuration.encryptionPolicy
        let harvests = configuration.harvestCertificates && configuration.mode.contains(.verify) && configuration.trustAnchors != nil
        guard policy != nil || harvests else { return nil }
        do {
            return try openEncryption(configuration, policy: policy, harvests: harvests, now: now, problems: &problems)
        } catch {
            guard policy == nil else { throw error }
            problems.append("\(error); certificates are not harvested")
            return nil
        }
    }

    private static func openEncryption(_ configuration: Configuration, policy: EncryptionPolicy?, harvests: Bool, now: Date,
                                       problems: inout [String]) throws -> EncryptionSetup {
        let store: any RecipientCertificateStore
        do {
            var unanswered: [String] = []
            store = try StoreRuntime.open(configuration, use: .milter, noAnswer: { unanswered.append($0) })
            problems += unanswered
        } catch {
            throw SetupError("CertificateStore \(configuration.certificateStore): \(error)")
        }
        if let directory = configuration.recipientCertificateDir {
            let report = try RecipientCertificateImport.loadDirectory(directory, into: store, at: now)
            problems += report.problems.map { "RecipientCertificateDir: \($0)" }
        }
        let check: RecipientCertificateCheck
        do {
            guard let made = try RecipientCerts.check(configuration) else {
                throw SetupError("EncryptionTable needs TrustAnchors: without them no recipient certificate is usable")
            }
            check = made
        } catch let error as SetupError {
            throw error
        } catch {
            throw SetupError("TrustAnchors: \(error)")
        }
        var archive: RecipientCertificate?
        if let path = configuration.archiveCertificate {
            do {
                let all = try RecipientCertificate.certificates(pem: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
                guard let first = all.first else { throw SetupError("no PEM certificate") }
                if let problem = check.problem(with: first, intermediates: Array(all.dropFirst()), at: now) {
                    throw SetupError(problem)
                }
                archive = first
            } catch {
                throw SetupError("ArchiveCertificate \(path): \(error)")
            }
        }
        return EncryptionSetup(policy: policy, lookup: RecipientCertificateLookup(store: store, check: check), archive: archive,
                               rsaKeyTransport: configuration.cmsRSAKeyTransport, harvest: harvests,
                               onStoreError: configuration.storeSettings.onStoreError)
    }
}

/// A setup step that failed, in words for the start error or the reload refusal.
struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
