// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The revocation check of a recipient certificate at the point of use, by the same
/// `RevocationChecker` (OCSP, CRLs, cache) that checks inbound signers. A revoked certificate
/// is never encrypted to; one whose status is unknown is used only when `acceptUnknown`
/// (`OnRevocationUnknown accept`), otherwise the recipient falls back to its encryption policy.
public struct RecipientRevocation: RecipientRevocationCheck {
    public let checker: RevocationChecker
    public let acceptUnknown: Bool

    public init(checker: RevocationChecker, acceptUnknown: Bool) {
        self.checker = checker
        self.acceptUnknown = acceptUnknown
    }

    public func problem(with certificate: RecipientCertificate, chain: [RecipientCertificate], at time: Date) -> String? {
        // The chain is leaf first, as RevocationChecker wants it.
        let result = checker.check(chain: chain.map(\.x509))
        if let revoked = result.revokedReason { return revoked }
        return acceptUnknown ? nil : result.unknownReason
    }
}
