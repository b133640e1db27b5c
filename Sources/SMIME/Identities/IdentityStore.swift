// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The signing identities of a CertificateDir, plus the files that were refused and why.
///
/// Loading never throws: every unusable file becomes an `IdentityProblem` so the operator
/// sees all problems at once, and the good identities are still usable.
public struct IdentityStore: Sendable {
    /// At most this many directory entries are looked at (bounded work).
    public static let maximumEntries = 10_000

    /// The usable identities, sorted by name.
    public let identities: [SigningIdentity]
    /// The refused files, sorted by file name.
    public let rejected: [IdentityProblem]
    /// Identities refused only because their certificate has expired. They never sign; they
    /// are kept so that mail for their addresses gets `OnExpiredCertificate` rather than
    /// silently going out unsigned, and so that `certs` can list them.
    public let expired: [SigningIdentity]
    /// Identities refused for signing only because their keyUsage lacks digitalSignature (an
    /// encryption-only certificate): they never sign, but they decrypt (DecryptionTable).
    public let encryptionOnly: [SigningIdentity]

    /// Makes a store from already loaded identities (tests, or several directories merged).
    public init(identities: [SigningIdentity], rejected: [IdentityProblem] = [], expired: [SigningIdentity] = [],
                encryptionOnly: [SigningIdentity] = []) {
        self.identities = identities.sorted { $0.name < $1.name }
        self.rejected = rejected.sorted { $0.file < $1.file }
        self.expired = expired.sorted { $0.name < $1.name }
        self.encryptionOnly = encryptionOnly.sorted { $0.name < $1.name }
    }

    /// Loads every identity in `directory`; see `IdentityLoader` for the file layouts.
    /// Hidden files and files with other extensions (README, .crt of roots...) are ignored.
    /// `tokens` says how keys on PKCS#11 tokens are reached (`NAME.key` with a `pkcs11:` URI).
    public static func load(directory: String, now: Date = Date(), tokens: TokenSettings = TokenSettings()) -> IdentityStore {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            return IdentityStore(identities: [], rejected: [
                IdentityProblem(file: directory, reason: "cannot list the certificate directory: \(error.localizedDescription)"),
            ])
        }
        var stems = Set<String>()
        var problems: [IdentityProblem] = []
        if entries.count > maximumEntries {
            problems.append(IdentityProblem(file: directory, reason: "more than \(maximumEntries) entries; the rest are ignored"))
        }
        let known: Set<String> = ["pem", "key", "p12", "pfx", "pass"]
        for entry in entries.prefix(maximumEntries) where !entry.hasPrefix(".") {
            let stem = (entry as NSString).deletingPathExtension
            let ext = (entry as NSString).pathExtension.lowercased()
            if known.contains(ext), !stem.isEmpty { stems.insert(stem) }
        }
        var identities: [SigningIdentity] = []
        var expired: [SigningIdentity] = []
        var encryptionOnly: [SigningIdentity] = []
        for stem in stems.sorted() {
            do throws(IdentityProblem) {
                identities.append(try IdentityLoader.load(name: stem, directory: directory, now: now, tokens: tokens))
            } catch {
                problems.append(error)
                if error.reason.hasPrefix("certificate expired"),
                   let old = try? IdentityLoader.load(name: stem, directory: directory, now: now, allowExpired: true, tokens: tokens) {
                    expired.append(old)
                } else if error.reason.hasPrefix("keyUsage does not include digitalSignature") || error.reason.hasPrefix("certificate expired"),
                          let key = try? IdentityLoader.load(name: stem, directory: directory, now: now, allowExpired: true,
                                                             forDecryption: true, tokens: tokens) {
                    encryptionOnly.append(key)
                }
            }
        }
        return IdentityStore(identities: identities, rejected: problems, expired: expired, encryptionOnly: encryptionOnly)
    }

    /// The identity with this name (the file stem), if loaded.
    public func identity(named name: String) -> SigningIdentity? {
        identities.first { $0.name == name }
    }

    /// The identity whose certificate holds `address` (case-insensitive). When several do,
    /// the one valid longest (latest notAfter) wins, so a renewed certificate takes over
    /// from the old one as soon as both are in the directory.
    public func identity(forAddress address: String) -> SigningIdentity? {
        identities.filter { $0.matches(address: address) }.max { $0.notAfter < $1.notAfter }
    }

    /// An expired identity with this name or for this address, when no usable one exists.
    public func expiredIdentity(named name: String) -> SigningIdentity? {
        expired.first { $0.name == name }
    }

    /// See `expiredIdentity(named:)`.
    public func expiredIdentity(forAddress address: String) -> SigningIdentity? {
        expired.filter { $0.matches(address: address) }.max { $0.notAfter < $1.notAfter }
    }
}
