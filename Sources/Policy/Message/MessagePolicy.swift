// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The top-level decision for one message, run by the milter binding: mail that originates
/// here (`MessageOrigin`) goes to `SigningPolicy`; other mail goes to `VerificationPolicy` when
/// `Mode` contains `v` and a verifier is available, and is left alone otherwise.
public struct MessagePolicy: Sendable {
    public let signing: SigningPolicy
    /// Nil when this build or setup has no verifier: inbound mail is then left alone.
    public let verification: VerificationPolicy?

    public init(signing: SigningPolicy, verification: VerificationPolicy?) {
        self.signing = signing
        self.verification = verification
    }

    /// The configuration both policies were built from.
    public var configuration: Configuration { signing.configuration }

    /// Decides about `message` as of `now` (the arrival time: certificates are checked then).
    /// The origin is worked out here, once, and handed to the signing policy.
    public func evaluate(_ message: MessageContext, now: Date) -> PolicyOutcome {
        if let origin = MessageOrigin.of(message, internalHosts: configuration.internalHosts) {
            return signing.evaluate(message, origin: origin, now: now)
        }
        guard configuration.mode.contains(.verify) else {
            return PolicyOutcome(decision: .skipped(reason: "not originating here"))
        }
        guard let verification else {
            let why = configuration.trustAnchors == nil ? "TrustAnchors is not set" : "no verifier is available"
            return PolicyOutcome(decision: .skipped(reason: "inbound, not verified: \(why)"))
        }
        return verification.evaluate(message, now: now)
    }
}

extension MessagePolicy: MessageEvaluator {
    public func evaluate(_ message: MessageContext) -> PolicyOutcome {
        evaluate(message, now: Date())
    }

    public var failureRules: FailureRules { configuration.failureRules }
}
