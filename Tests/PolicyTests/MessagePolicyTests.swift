// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Policy
import SMIME
import Testing

/// Dispatch: mail originating here is for signing, other mail for verification when Mode has v.
@Suite struct MessagePolicyTests {
    func policy(_ mode: OperatingMode, verifier: (any SignatureVerifier)? = StubVerifier(report: Reports.pass)) -> MessagePolicy {
        let config = verificationConfiguration(mode: mode)
        let signing = SigningPolicy(configuration: config, identities: IdentityStore(identities: []))
        return MessagePolicy(signing: signing, verification: verifier.map { VerificationPolicy(configuration: config, verifier: $0) })
    }

    func isVerified(_ outcome: PolicyOutcome) -> Bool {
        if case .verified = outcome.decision { return true }
        return false
    }

    @Test func externalMailIsVerifiedWithModeV() {
        for mode: OperatingMode in [[.verify], [.sign, .verify]] {
            let outcome = policy(mode).evaluate(inboundMessage())
            #expect(outcome.decision == .verified(result: .pass, reason: nil), "mode \(mode)")
        }
    }

    @Test func externalMailIsLeftAloneWithModeS() {
        let outcome = policy([.sign]).evaluate(inboundMessage())
        #expect(outcome.decision == .skipped(reason: "not originating here"))
        #expect(outcome.edits.isEmpty)
    }

    @Test func mailOriginatingHereIsNeverVerified() {
        let p = policy([.sign, .verify], verifier: ExplodingVerifier())
        let origins = [
            inboundMessage(client: "127.0.0.1"),                       // InternalHosts
            inboundMessage(client: "192.0.2.7", sasl: "alice@example.com"),  // SASL
            inboundMessage(client: "127.0.0.1", nonSMTP: true),        // sendmail command
        ]
        for message in origins {
            let outcome = p.evaluate(message)
            #expect(!isVerified(outcome))
            #expect(!outcome.edits.contains { if case .insertField = $0 { return true } else { return false } })
            // It went to signing, which has no identity for alice here.
            #expect(outcome.decision == .skipped(reason: "no identity for alice@example.com"))
        }
        let verifyOnly = policy([.verify], verifier: ExplodingVerifier()).evaluate(inboundMessage(client: "127.0.0.1"))
        #expect(verifyOnly.decision == .skipped(reason: "signing is off (Mode)"))
    }

    @Test func noVerifierMeansInboundIsSkipped() {
        let outcome = policy([.sign, .verify], verifier: nil).evaluate(inboundMessage())
        #expect(outcome.decision == .skipped(reason: "inbound, not verified: TrustAnchors is not set"))
        #expect(outcome.edits.isEmpty)
    }

    @Test func originRuleIsShared() {
        let hosts = NetworkList.loopback
        #expect(MessageOrigin.of(inboundMessage(client: "127.0.0.1"), internalHosts: hosts) == .internalHost)
        #expect(MessageOrigin.of(inboundMessage(client: "192.0.2.7", sasl: "x"), internalHosts: hosts) == .sasl)
        #expect(MessageOrigin.of(inboundMessage(client: nil, nonSMTP: true), internalHosts: hosts) == .localSubmission)
        #expect(MessageOrigin.of(inboundMessage(client: "192.0.2.7"), internalHosts: hosts) == nil)
        #expect(MessageOrigin.of(inboundMessage(client: nil), internalHosts: hosts) == nil)
    }
}
