// SPDX-License-Identifier: Apache-2.0
import Foundation
import SMIME

/// What `certs` and the expiry warnings say about one identity.
public struct CertificateStatus: Sendable, Equatable {
    public let name: String
    public let addresses: [String]
    public let issuer: String
    public let keyDescription: String
    public let notAfter: Date
    /// Whole days left until notAfter (negative once expired).
    public let daysLeft: Int
    /// Whether mail would be signed with it now, and if not, why.
    public let usedNow: Bool
    public let note: String?
    /// The smallest `ExpiryWarnDays` threshold it is within, if any.
    public let warningThreshold: Int?
}

/// Certificate lifecycle: which identities expire when, and which warnings are due. Pure
/// logic over an `IdentityStore`; the executable logs, mails and exports the result.
public enum CertificateExpiry {
    public static func statuses(
        identities: IdentityStore, configuration: Configuration, now: Date = Date()
    ) -> [CertificateStatus] {
        let tableNames: Set<String>? = configuration.signingTable.map { table in
            Set(table.rules.compactMap { rule -> String? in
                if case let .sign(identity, _) = rule.entry { return identity }
                return nil
            })
        }
        var result: [CertificateStatus] = []
        for identity in identities.identities {
            let days = daysLeft(identity.notAfter, now: now)
            var used = true
            var note: String?
            if now < identity.notBefore {
                used = false
                note = "not valid yet"
            } else if now > identity.notAfter {
                used = false
                note = "expired"
            } else if let tableNames, !tableNames.contains(identity.name) {
                used = false
                note = "not named in the SigningTable"
            }
            result.append(status(identity, days: days, used: used, note: note, thresholds: configuration.expiryWarnDays))
        }
        for identity in identities.expired {
            result.append(status(identity, days: daysLeft(identity.notAfter, now: now), used: false,
                                 note: "expired", thresholds: configuration.expiryWarnDays))
        }
        return result.sorted { $0.name < $1.name }
    }

    /// Whole days from `now` to `notAfter`, rounded down (a certificate expiring in 36 hours
    /// has 1 day left; one that expired an hour ago has -1).
    public static func daysLeft(_ notAfter: Date, now: Date) -> Int {
        Int((notAfter.timeIntervalSince(now) / 86_400).rounded(.down))
    }

    /// The smallest threshold that `daysLeft` is within (thresholds descending), or nil.
    public static func threshold(daysLeft: Int, thresholds: [Int]) -> Int? {
        thresholds.filter { daysLeft <= $0 }.min()
    }

    private static func status(_ identity: SigningIdentity, days: Int, used: Bool, note: String?, thresholds: [Int]) -> CertificateStatus {
        CertificateStatus(
            name: identity.name, addresses: identity.addresses, issuer: identity.issuer,
            keyDescription: identity.keyDescription, notAfter: identity.notAfter, daysLeft: days,
            usedNow: used, note: note, warningThreshold: threshold(daysLeft: days, thresholds: thresholds))
    }
}
