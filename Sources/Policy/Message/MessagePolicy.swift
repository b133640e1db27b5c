// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The top-level decision for one message, run by the milter binding: mail that originates
/// here (`MessageOrigin`) goes to `SigningPolicy`; other mail goes to `VerificationPolicy` when
/// `Mode` contains `v` and a verifier is available, and is left alone otherwise.
public struct MessagePolicy: Sendable {
    public let signing: SigningPolicy
    /// Nil when this build or setup has no verifier: inbound mail is then left alone.
    public let verification: VerificationPolicy?
    /// Encryption of outbound mail and harvesting from inbound mail; nil when neither applies.
    public let encryption: EncryptionSetup?
    /// Decryption of inbound mail (`DecryptionTable`); nil: nothing is decrypted.
    public let decryption: DecryptionSetup?

    public init(signing: SigningPolicy, verification: VerificationPolicy?, encryption: EncryptionSetup? = nil,
                decryption: DecryptionSetup? = nil) {
        self.signing = signing
        self.verification = verification
        self.encryption = encryption
        self.decryption = decryption
    }

    /// The configuration both policies were built from.
    public var configuration: Configuration { signing.configuration }

    /// Decides about `message` as of `now` (the arrival time: certificates are checked then).
    /// The origin is worked out here, once, and handed to the signing policy.
    public func evaluate(_ message: MessageContext, now: Date) -> PolicyOutcome {
        if let origin = MessageOrigin.of(message, internalHosts: configuration.internalHosts) {
            if let encryption, let policy = encryption.policy, configuration.mode.contains(.sign) {
                return signAndEncrypt(message, origin: origin, encryption: encryption, policy: policy, now: now)
            }
            return signing.evaluate(message, origin: origin, now: now)
        }
        if let decryption { return decryptAndVerify(message, decryption: decryption, now: now) }
        guard configuration.mode.contains(.verify) else {
            return PolicyOutcome(decision: .skipped(reason: "not originating here"))
        }
        guard let verification else {
            let why = configuration.trustAnchors == nil ? "TrustAnchors is not set" : "no verifier is available"
            return PolicyOutcome(decision: .skipped(reason: "inbound, not verified: \(why)"))
        }
        guard let encryption, encryption.harvest else { return verification.evaluate(message, now: now) }
        // The harvest comes after the verdict and never changes it.
        let (outcome, report, body) = verification.evaluateReporting(message, now: now)
        return harvest(message, report: report, body: body, outcome: outcome, now: now)
    }
}

extension MessagePolicy: MessageEvaluator {
    public func evaluate(_ message: MessageContext) -> PolicyOutcome {
        evaluate(message, now: Date())
    }

    public var failureRules: FailureRules { configuration.failureRules }

    public func atRecipient(_ recipient: String, envelope: MessageContext, transactionClass: RecipientClass?) -> RecipientAnswer {
        atRecipient(recipient, envelope: envelope, transactionClass: transactionClass, now: Date())
    }
}
