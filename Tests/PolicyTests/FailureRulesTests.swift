// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MIME
import Policy
import SMIME
import Testing

/// `FailureRules`: a spooled body that cannot be read is an error under `OnError`, never an
/// empty body; a refused edit always tempfails.
@Suite struct FailureRulesTests {
    /// A spooled body whose file is shorter than recorded: every read fails.
    func unreadableBody() throws -> MessageBody {
        let fd = open("/dev/null", O_RDONLY)
        try #require(fd >= 0)
        return .file(BodyFile(fd: fd, size: 100))
    }

    @Test(arguments: [OnErrorAction.tempfail, .accept])
    func anUnreadableSpooledBodyGoesByOnError(onError: OnErrorAction) throws {
        var config = verificationConfiguration()
        config.onError = onError
        let policy = MessagePolicy(
            signing: SigningPolicy(configuration: config, identities: IdentityStore(identities: [])),
            verification: VerificationPolicy(configuration: config, verifier: StubVerifier(report: Reports.pass)))
        var message = inboundMessage()
        message.body = try unreadableBody()
        let outcome = policy.evaluate(message, now: Date())
        guard case let .error(reason) = outcome.decision else {
            Issue.record("expected an error, got \(outcome.decision)")
            return
        }
        #expect(reason.contains("spooled body"))
        #expect(outcome.edits.isEmpty)
        #expect(outcome.action == (onError == .tempfail ? .tempfail(FailureRules.notProcessed) : .accept))
    }

    @Test func theInMemoryModelDoesNotTurnAnUnreadableBodyIntoAnEmptyOne() throws {
        let body = try unreadableBody()
        #expect(throws: BodyFile.ReadError.self) {
            try MessageEditor.apply([.replaceBody(body)], fields: [], body: [])
        }
    }

    @Test(arguments: [OnErrorAction.tempfail, .accept])
    func aRefusedEditTempfails(onError: OnErrorAction) {
        let signed = PolicyOutcome(decision: .signed(identity: "alice", form: .detached), edits: [.replaceBody([])])
        let failed = FailureRules(onError: onError).editFailed("cannot replace the body", outcome: signed)
        #expect(failed.decision == .error(reason: "cannot replace the body"))
        #expect(failed.action == .tempfail(code: "451", xcode: "4.3.0", text: "smime-milter: message could not be processed, try again later"))
    }
}
