// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy
import SMIME

extension LoadedSetup {
    /// The decryption setup when a `DecryptionTable` is configured: the keys are every identity of
    /// CertificateDir as loaded (revoked ones too: revocation stops signing, not reading old mail),
    /// the expired ones, and the superseded pairs the lifecycle keeps in `CertificateDir/archive/`.
    static func makeDecryption(_ configuration: Configuration, identities: IdentityStore, now: Date,
                               problems: inout [String]) -> DecryptionSetup? {
        guard let table = configuration.decryption.table else { return nil }
        var keys = identities.identities + identities.expired + identities.encryptionOnly
        if let dir = configuration.certificateDir {
            let archive = dir + "/archive"
            if FileManager.default.fileExists(atPath: archive) {
                let archived = IdentityStore.load(directory: archive, now: now, tokens: configuration.tokens)
                keys += archived.identities + archived.expired + archived.encryptionOnly
            }
        } else {
            problems.append("DecryptionTable is set but CertificateDir is not: there are no keys to decrypt with")
        }
        return DecryptionSetup(table: table, settings: configuration.decryption, keys: keys)
    }
}
