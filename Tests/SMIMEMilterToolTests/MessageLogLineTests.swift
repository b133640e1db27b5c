// SPDX-License-Identifier: Apache-2.0
import MIME
import Policy
@testable import smime_milter
import Testing

/// The one log line per message.
@Suite struct MessageLogLineTests {
    let message = MessageContext(queueID: "4Xq1", connection: ConnectionInfo(clientAddress: "192.0.2.1"),
                                 envelopeSender: "<a@example.com>", fields: [], body: [])

    @Test func aFailureSaysWhyAndWhatTheMTAWasTold() {
        let outcome = FailureRules(onError: .tempfail).error(
            "cannot read the spooled body: \"x\"\nnext", outcome: PolicyOutcome(decision: .skipped(reason: ""), fromAddress: "a@example.com"))
        let line = MessageLogLine.format(message, outcome: outcome, milliseconds: 1.25)
        #expect(line == "4Xq1: from=<a@example.com> decision=error reason=\"cannot read the spooled body: 'x' next\" action=tempfail ms=1.2")
    }

    @Test func anAcceptedMessageHasNoAction() {
        let outcome = PolicyOutcome(decision: .signed(identity: "alice", form: .detached), fromAddress: "a@example.com",
                                    details: [("identity", "alice")])
        #expect(MessageLogLine.format(message, outcome: outcome, milliseconds: 0) ==
                "4Xq1: from=<a@example.com> decision=signed identity=alice ms=0.0")
    }
}
