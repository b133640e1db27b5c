// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
@testable import Milter
import Policy
import SMIME
import Testing

/// The per-connection logic of the libmilter binding, driven without libmilter: the session
/// gets the callbacks' values and carries the outcome out through a recording `EditSink`.
@Suite struct MilterSessionTests {
    /// Edits in an order no MTA would apply them.
    static let scrambled: [MessageEdit] = [
        .replaceBody(Array("signed body\r\n".utf8)),
        .addField(name: "MIME-Version", value: " 1.0"),
        .deleteField(name: "X-Tag", occurrence: 1),
        .insertField(index: 0, name: "Authentication-Results", value: " mx; smime=none"),
        .changeField(name: "Subject", occurrence: 1, value: " [tag] hello"),
        .deleteField(name: "x-TAG", occurrence: 2),
        .addField(name: "Content-Type", value: " multipart/signed"),
        .deleteField(name: "Content-Type", occurrence: 1),
    ]

    @Test func editsReachTheSinkInTheOrderTheMTAModelApplies() throws {
        let evaluator = ScriptedEvaluator { _ in PolicyOutcome(decision: .skipped(reason: "test"), edits: Self.scrambled) }
        let session = MilterSession(delegate: RecordingDelegate(evaluator))
        session.feed(fields: sampleFields, body: sampleBody)
        let sink = RecordingSink()
        #expect(session.endOfMessage(queueID: "Q1", sink: sink) == .accept)
        #expect(sink.edits == MessageEditor.mtaOrder(Self.scrambled))
        #expect(sink.replies.isEmpty)
        // Changes first, then deletions from the last occurrence to the first.
        guard case .changeField = sink.edits.first, case .deleteField(_, 2) = sink.edits[1] else {
            Issue.record("unexpected order \(sink.edits)")
            return
        }
        // The requests, carried out one at a time as the MTA does, give the message the
        // in-memory model gives for the same edits: one model of the ordering.
        let received = evaluator.messages[0].fields
        var fields = received
        var body: [UInt8] = Array(sampleBody.utf8)
        for edit in sink.edits {
            (fields, body) = try MessageEditor.apply([edit], fields: fields, body: body)
        }
        let model = try MessageEditor.apply(Self.scrambled, fields: received, body: Array(sampleBody.utf8))
        #expect(fields == model.fields)
        #expect(body == model.body)
        #expect(fields.map(\.name) == ["Authentication-Results", "From", "To", "Subject", "MIME-Version", "Content-Type"])
        #expect(fields[3].value == " [tag] hello")
    }

    @Test func theContextCarriesWhatTheCallbacksCollected() throws {
        let evaluator = ScriptedEvaluator { _ in PolicyOutcome(decision: .skipped(reason: "test")) }
        let session = MilterSession(delegate: RecordingDelegate(evaluator))
        session.connect(hostname: "client.example", address: "192.0.2.7", port: 4711, hasAddress: true)
        session.feed(sasl: "alice", recipients: ["<b@x.test>", "<c@x.test>"], fields: sampleFields, body: sampleBody)
        _ = session.endOfMessage(queueID: "Q2", sink: RecordingSink())
        let message = try #require(evaluator.messages.first)
        #expect(message.queueID == "Q2")
        #expect(message.connection == ConnectionInfo(clientAddress: "192.0.2.7", clientHostname: "client.example"))
        #expect(message.saslLogin == "alice")
        #expect(message.envelopeSender == "<alice@example.com>")
        #expect(message.recipients == ["<b@x.test>", "<c@x.test>"])
        // HeaderField's contract: the value as it stood after the colon, leading space included.
        #expect(message.fields.first == HeaderField(name: "From", value: " Alice <alice@example.com>"))
        #expect(message.body == .memory(Array(sampleBody.utf8)))
    }

    @Test func nonSMTPMailIsRecognised() {
        let session = MilterSession(delegate: nil)
        session.connect(hostname: "localhost", address: "127.0.0.1", port: 0, hasAddress: true)
        #expect(session.connection.isNonSMTP)
        session.connect(hostname: nil, address: nil, port: nil, hasAddress: false)
        #expect(session.connection.isNonSMTP)
        session.connect(hostname: "localhost", address: "127.0.0.1", port: 40000, hasAddress: true)
        #expect(!session.connection.isNonSMTP)
    }

    @Test(arguments: [OnErrorAction.tempfail, .accept])
    func aRefusedEditTempfailsWhateverOnErrorSays(onError: OnErrorAction) {
        let evaluator = ScriptedEvaluator(onError: onError) { _ in
            PolicyOutcome(decision: .signed(identity: "alice", form: .detached), edits: Self.scrambled)
        }
        let delegate = RecordingDelegate(evaluator)
        let session = MilterSession(delegate: delegate)
        session.feed(fields: sampleFields, body: sampleBody)
        let sink = RecordingSink()
        sink.refusing = [2]
        let action = session.endOfMessage(queueID: nil, sink: sink)
        #expect(action == .tempfail(FailureRules.notProcessed))
        #expect(sink.edits.count == 2)   // the MTA discards these with the tempfail
        #expect(sink.replies == [FailureRules.notProcessed])
        guard case let .error(reason)? = delegate.finishedOutcomes.first?.decision else {
            Issue.record("the log line must say error: \(delegate.finishedOutcomes)")
            return
        }
        #expect(reason.contains("refused"))
    }

    @Test(arguments: [OnErrorAction.tempfail, .accept])
    func aSpoolFileThatCannotBeWrittenGoesByOnError(onError: OnErrorAction) throws {
        let evaluator = ScriptedEvaluator(onError: onError) { _ in
            PolicyOutcome(decision: .signed(identity: "alice", form: .detached), edits: Self.scrambled)
        }
        // A directory below a regular file cannot be created.
        let delegate = RecordingDelegate(evaluator, spool: SpoolSettings(threshold: 4, directory: "/dev/null/spool"))
        let session = MilterSession(delegate: delegate)
        session.feed(fields: sampleFields, body: sampleBody)
        let sink = RecordingSink()
        let action = session.endOfMessage(queueID: nil, sink: sink)
        #expect(evaluator.messages.isEmpty)   // never decided: the body is missing
        #expect(sink.edits.isEmpty)
        switch onError {
        case .tempfail:
            #expect(action == .tempfail(FailureRules.notProcessed))
            #expect(sink.replies == [FailureRules.notProcessed])
        case .accept:
            #expect(action == .accept)
            #expect(sink.calls.isEmpty)
        }
        let outcome = try #require(delegate.finishedOutcomes.first)
        guard case let .error(reason) = outcome.decision else {
            Issue.record("expected an error decision, got \(outcome.decision)")
            return
        }
        #expect(reason.contains("/dev/null/spool"))
    }

    @Test func aRejectMakesNoEditsAndRepliesWithThePolicysText() {
        let evaluator = ScriptedEvaluator { _ in
            PolicyOutcome(decision: .verified(result: .none, reason: nil), edits: Self.scrambled,
                          action: .reject(code: "550", xcode: "5.7.1", text: "signature required"))
        }
        let session = MilterSession(delegate: RecordingDelegate(evaluator))
        session.feed(fields: sampleFields, body: sampleBody)
        let sink = RecordingSink()
        #expect(session.endOfMessage(queueID: nil, sink: sink) == .reject(code: "550", xcode: "5.7.1", text: "signature required"))
        #expect(sink.calls == [.reply(SMTPReply(code: "550", xcode: "5.7.1", text: "signature required"))])
    }

    @Test func aPolicyTempfailKeepsItsOwnReply() {
        let reply = SMTPReply(code: "451", xcode: "4.7.5", text: "try later")
        let evaluator = ScriptedEvaluator { _ in PolicyOutcome(decision: .verified(result: .temperror, reason: nil), action: .tempfail(reply)) }
        let session = MilterSession(delegate: RecordingDelegate(evaluator))
        session.feed(fields: sampleFields, body: sampleBody)
        let sink = RecordingSink()
        #expect(session.endOfMessage(queueID: nil, sink: sink) == .tempfail(reply))
        #expect(sink.calls == [.reply(reply)])
    }

    @Test func quarantineComesAfterTheEditsAndARefusalTempfails() {
        let edits: [MessageEdit] = [.insertField(index: 0, name: "Authentication-Results", value: " mx; smime=none")]
        let evaluator = ScriptedEvaluator { _ in
            PolicyOutcome(decision: .verified(result: .none, reason: nil), edits: edits, action: .quarantine(reason: "unsigned"))
        }
        let session = MilterSession(delegate: RecordingDelegate(evaluator))
        session.feed(fields: sampleFields, body: sampleBody)
        let sink = RecordingSink()
        #expect(session.endOfMessage(queueID: nil, sink: sink) == .quarantine(reason: "unsigned"))
        #expect(sink.calls == [.edit(edits[0]), .quarantine("unsigned")])

        session.feed(fields: sampleFields, body: sampleBody)
        let refusing = RecordingSink()
        refusing.refusing = [1]
        #expect(session.endOfMessage(queueID: nil, sink: refusing) == .tempfail(FailureRules.notProcessed))
        #expect(refusing.calls == [.edit(edits[0]), .reply(FailureRules.notProcessed)])
    }

    @Test func temperrorOfARequiredSignerIs451_4_7_5FromThePolicy() throws {
        var config = Configuration(authservID: "mx.example.net")
        config.requireSignature = try RequiredSigners.parse(contents: "@example.com\n", file: "required")
        config.onMissingSignature = .reject
        let verification = VerificationPolicy(
            configuration: config, verifier: StubVerifier(report: VerificationReport(result: .temperror, reason: "CRL unavailable")))
        let policy = MessagePolicy(signing: SigningPolicy(configuration: config, identities: IdentityStore(identities: [])),
                                   verification: verification)
        let session = MilterSession(delegate: RecordingDelegate(policy))
        session.connect(hostname: "mx.elsewhere", address: "192.0.2.9", port: 25, hasAddress: true)
        session.feed(fields: sampleFields, body: sampleBody)
        let sink = RecordingSink()
        let action = session.endOfMessage(queueID: nil, sink: sink)
        guard case let .tempfail(code, xcode, text) = action else {
            Issue.record("expected tempfail, got \(action)")
            return
        }
        #expect((code, xcode) == ("451", "4.7.5"))
        #expect(text.contains("S/MIME signature required"))
        #expect(sink.edits.isEmpty)
        #expect(sink.replies == [SMTPReply(code: code, xcode: xcode, text: text)])
    }

    @Test func stateIsResetBetweenMessagesAndAfterAnAbort() throws {
        let evaluator = ScriptedEvaluator { _ in PolicyOutcome(decision: .skipped(reason: "test")) }
        let session = MilterSession(delegate: RecordingDelegate(evaluator))
        session.connect(hostname: "client.example", address: "192.0.2.7", port: 4711, hasAddress: true)
        session.feed(sasl: "alice", recipients: ["<one@x.test>"], fields: sampleFields, body: sampleBody)
        _ = session.endOfMessage(queueID: "Q1", sink: RecordingSink())
        // An aborted message leaves nothing behind.
        session.feed(from: "<mallory@x.test>", sasl: "mallory", recipients: ["<aborted@x.test>"],
                     fields: [("Subject", "aborted")], body: "aborted body\r\n")
        session.abort()
        session.feed(from: "<carol@example.com>", recipients: ["<two@x.test>"], fields: [("From", "carol@example.com")], body: "second\r\n")
        _ = session.endOfMessage(queueID: "Q2", sink: RecordingSink())
        #expect(evaluator.messages.count == 2)
        let second = evaluator.messages[1]
        #expect(second.queueID == "Q2")
        #expect(second.saslLogin == nil)
        #expect(second.envelopeSender == "<carol@example.com>")
        #expect(second.recipients == ["<two@x.test>"])
        #expect(second.fields == [HeaderField(name: "From", value: " carol@example.com")])
        #expect(second.body == .memory(Array("second\r\n".utf8)))
        // The connection's facts stay for every message on it.
        #expect(second.connection == evaluator.messages[0].connection)
        // And after end-of-message the session holds no message.
        #expect(session.fields.isEmpty && session.recipients.isEmpty && session.body.isEmpty && session.spool == nil)
    }

    @Test func theRulesAreFixedWhenTheMessageStarts() {
        let first = ScriptedEvaluator { _ in PolicyOutcome(decision: .skipped(reason: "first")) }
        let second = ScriptedEvaluator { _ in PolicyOutcome(decision: .skipped(reason: "second")) }
        let delegate = RecordingDelegate(first)
        let session = MilterSession(delegate: delegate)
        session.feed(fields: sampleFields, body: sampleBody)
        delegate.replace(second)   // a reload during the message
        _ = session.endOfMessage(queueID: nil, sink: RecordingSink())
        #expect(first.messages.count == 1 && second.messages.isEmpty)
    }

    @Test func aLargeBodyIsSpooledAndItsFileGoesWithTheMessage() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("milter-tests-\(getpid())-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let body = String(repeating: "a line of the body\r\n", count: 50)
        let evaluator = ScriptedEvaluator { message in
            // The file is there while the message is decided, and gives back what was sent.
            let bytes = (try? message.body.bytes()) ?? []
            return PolicyOutcome(decision: .skipped(reason: "\(message.body.file != nil) \(bytes == Array(body.utf8))"),
                                 edits: [.replaceBody(message.body)])
        }
        let delegate = RecordingDelegate(evaluator, spool: SpoolSettings(threshold: 100, directory: directory))
        let session = MilterSession(delegate: delegate)
        session.feed(fields: sampleFields, body: body, pieceSize: 64)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).count == 1)
        let sink = RecordingSink()
        #expect(session.endOfMessage(queueID: nil, sink: sink) == .accept)
        #expect(delegate.finishedOutcomes.first?.decision == .skipped(reason: "true true"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
        // An aborted spooled message removes its file too.
        session.feed(fields: sampleFields, body: body, pieceSize: 64)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).count == 1)
        session.abort()
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }
}

/// `MaxConnections`: the session counts itself among the open connections and asks the
/// delegate for the limit; the reply comes from `FailureRules`.
@Suite struct ConnectionLimitTests {
    final class LimitDelegate: MilterDelegate, @unchecked Sendable {
        let limit: Int?
        let lines = Locked<[String]>([])
        init(limit: Int?) { self.limit = limit }
        func currentEvaluator() -> any MessageEvaluator { ScriptedEvaluator { _ in PolicyOutcome(decision: .skipped(reason: "test")) } }
        func finished(_ message: MessageContext, outcome: PolicyOutcome, milliseconds: Double) {}
        func log(_ level: MilterLogLevel, _ text: String) { lines.withLock { $0.append(text) } }
        func connectionLimit() -> Int? { limit }
    }

    @Test func aConnectionBeyondTheLimitIsTempfailedWithALogLine() {
        // Limit 0: this session alone is one too many, whatever other tests have open.
        let delegate = LimitDelegate(limit: 0)
        let session = MilterSession(delegate: delegate)
        let answer = session.connect(hostname: "mx.example", address: "192.0.2.7", port: 25, hasAddress: true)
        #expect(answer == FailureRules.connectionLimit(open: 1, limit: 0))
        let lines = delegate.lines.withLock { $0 }
        #expect(lines.count == 1)
        #expect(lines.first?.contains("mx.example [192.0.2.7]") == true)
        #expect(lines.first?.contains("MaxConnections 0") == true)
    }

    @Test func connectionsWithinTheLimitOrWithoutOneAreServed() {
        for limit in [Int.max, nil] {
            let delegate = LimitDelegate(limit: limit)
            let sessions = (0..<50).map { _ in MilterSession(delegate: delegate) }
            for s in sessions {
                #expect(s.connect(hostname: nil, address: "127.0.0.1", port: 4000, hasAddress: true) == .accept)
            }
            #expect(delegate.lines.withLock { $0 }.isEmpty)
        }
    }

    @Test func theOpenCountFollowsSessions() {
        // Other suites run in parallel: compare with a count taken while these sessions live.
        var held: [MilterSession] = (0..<20).map { _ in MilterSession(delegate: nil) }
        let during = openConnections.load(ordering: .relaxed)
        #expect(during >= 20)
        held.removeAll()
        _ = held
    }
}

/// Stopping: once the shutdown flag is set, an end-of-message is tempfailed before the policy
/// (and so before any signing or verifying) runs, with its log line; the MTA keeps the message.
@Suite struct ShutdownTests {
    @Test func anEndOfMessageAfterTheStopBeganIsTempfailedWithoutThePolicy() throws {
        let evaluator = ScriptedEvaluator { _ in PolicyOutcome(decision: .skipped(reason: "decided")) }
        let delegate = RecordingDelegate(evaluator)
        let shutdown = ShutdownFlag()
        let session = MilterSession(delegate: delegate, gate: MessageWorkGate(maximumWait: 1), shutdown: shutdown)
        session.feed(fields: sampleFields, body: sampleBody)
        #expect(session.endOfMessage(queueID: "Q1", sink: RecordingSink()) == .accept)
        shutdown.set()
        session.feed(fields: sampleFields, body: sampleBody)
        let sink = RecordingSink()
        let action = session.endOfMessage(queueID: "Q2", sink: sink)
        #expect(action == .tempfail(code: "451", xcode: "4.3.2", text: "smime-milter: stopping, try again later"))
        #expect(sink.replies.map(\.xcode) == ["4.3.2"])
        #expect(evaluator.messages.count == 1, "the policy must not run once the stop began")
        #expect(delegate.finishedOutcomes.count == 2)
        guard case .error(let reason)? = delegate.finishedOutcomes.last?.decision else {
            Issue.record("expected an error decision for the log line")
            return
        }
        #expect(reason == "the milter is stopping")
    }
}

/// `MaxConcurrentMessages`: end-of-message waits for a place at the gate; one that waits past
/// the gate's bound is tempfailed with the reason in the log line, and the MTA retries.
@Suite struct MessageWorkGateTests {
    final class GateDelegate: MilterDelegate, @unchecked Sendable {
        let limit: Int?
        let evaluator: ScriptedEvaluator
        let done = Locked<[PolicyOutcome]>([])
        init(limit: Int?, evaluator: ScriptedEvaluator) { self.limit = limit; self.evaluator = evaluator }
        func currentEvaluator() -> any MessageEvaluator { evaluator }
        func finished(_ message: MessageContext, outcome: PolicyOutcome, milliseconds: Double) { done.withLock { $0.append(outcome) } }
        func log(_ level: MilterLogLevel, _ text: String) {}
        func messageWorkLimit() -> Int? { limit }
    }

    @Test func aFullGateMakesTheMessageWaitThenTempfails() {
        let gate = MessageWorkGate(maximumWait: 0.5)
        #expect(gate.enter(limit: 1))   // someone else is deciding a message
        let evaluator = ScriptedEvaluator { _ in PolicyOutcome(decision: .skipped(reason: "decided")) }
        let delegate = GateDelegate(limit: 1, evaluator: evaluator)
        let session = MilterSession(delegate: delegate, gate: gate)
        session.feed(fields: sampleFields, body: sampleBody)
        let sink = RecordingSink()
        let action = session.endOfMessage(queueID: "Q1", sink: sink)
        #expect(action == .tempfail(code: "451", xcode: "4.3.2", text: "smime-milter: busy, try again later"))
        #expect(evaluator.messages.isEmpty, "the policy must not run without a place")
        #expect(sink.replies.map(\.code) == ["451"])
        guard case .error(let reason)? = delegate.done.withLock({ $0 }).first?.decision else {
            Issue.record("expected an error decision for the log line")
            return
        }
        #expect(reason.contains("MaxConcurrentMessages"))
        #expect(gate.count == 1)
        // A place frees: the next message is decided, and its place is given back afterwards.
        gate.leave()
        session.feed(fields: sampleFields, body: sampleBody)
        #expect(session.endOfMessage(queueID: "Q2", sink: RecordingSink()) == .accept)
        #expect(evaluator.messages.count == 1)
        #expect(gate.count == 0)
    }

    @Test func aWaitingMessageGoesOnWhenAPlaceFrees() async throws {
        let gate = MessageWorkGate(maximumWait: 300)
        #expect(gate.enter(limit: 1))
        let entered = Locked(false)
        let thread = Thread {
            if gate.enter(limit: 1) { entered.withLock { $0 = true }; gate.leave() }
        }
        thread.start()
        try await Task.sleep(for: .milliseconds(200))
        #expect(entered.withLock { $0 } == false, "the second message must wait while the place is taken")
        gate.leave()
        for _ in 0..<600 where !entered.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(entered.withLock { $0 })
    }

    @Test func noLimitAdmitsEveryMessage() {
        let gate = MessageWorkGate(maximumWait: 0.1)
        for _ in 0..<50 { #expect(gate.enter(limit: 0)) }
        #expect(gate.count == 50)
        for _ in 0..<50 { gate.leave() }
        #expect(gate.count == 0)
    }
}
