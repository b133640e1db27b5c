// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
@testable import Milter
import Policy
import SMIME

/// What the session asked of the MTA, in order.
enum SinkCall: Equatable {
    case edit(MessageEdit)
    case quarantine(String)
    case reply(SMTPReply)
}

/// An `EditSink` that records every request, as swift-nio's EmbeddedChannel records what a
/// handler writes; it refuses the request whose index (0-based, over edits and quarantine)
/// is in `refusing`, as an MTA that did not allow it would.
final class RecordingSink: EditSink {
    private(set) var calls: [SinkCall] = []
    var refusing: Set<Int> = []
    private var requests = 0

    var edits: [MessageEdit] { calls.compactMap { if case let .edit(e) = $0 { return e } else { return nil } } }
    var replies: [SMTPReply] { calls.compactMap { if case let .reply(r) = $0 { return r } else { return nil } } }

    private func request(_ call: SinkCall) throws {
        defer { requests += 1 }
        if refusing.contains(requests) { throw EditFailure(description: "refused \(call)") }
        calls.append(call)
    }

    func apply(_ edit: MessageEdit) throws { try request(.edit(edit)) }
    func quarantine(reason: String) throws { try request(.quarantine(reason)) }
    func setReply(_ reply: SMTPReply) { calls.append(.reply(reply)) }
}

/// An evaluator that answers with `decide` and records the contexts it was given.
final class ScriptedEvaluator: MessageEvaluator, @unchecked Sendable {
    let failureRules: FailureRules
    private let decide: @Sendable (MessageContext) -> PolicyOutcome
    private let seen = Locked<[MessageContext]>([])

    init(onError: OnErrorAction = .tempfail, _ decide: @escaping @Sendable (MessageContext) -> PolicyOutcome) {
        self.failureRules = FailureRules(onError: onError)
        self.decide = decide
    }

    func evaluate(_ message: MessageContext) -> PolicyOutcome {
        seen.withLock { $0.append(message) }
        return decide(message)
    }

    var messages: [MessageContext] { seen.withLock { $0 } }
}

/// A delegate with a replaceable evaluator that records each finished message.
final class RecordingDelegate: MilterDelegate, @unchecked Sendable {
    private let state: Locked<(evaluator: any MessageEvaluator, spool: SpoolSettings?)>
    private let done = Locked<[(MessageContext, PolicyOutcome)]>([])

    init(_ evaluator: any MessageEvaluator, spool: SpoolSettings? = nil) {
        state = Locked((evaluator, spool))
    }

    func replace(_ evaluator: any MessageEvaluator) { state.withLock { $0.evaluator = evaluator } }
    func currentEvaluator() -> any MessageEvaluator { state.withLock { $0.evaluator } }
    func spoolSettings() -> SpoolSettings? { state.withLock { $0.spool } }
    func finished(_ message: MessageContext, outcome: PolicyOutcome, milliseconds: Double) {
        done.withLock { $0.append((message, outcome)) }
    }
    func log(_ level: MilterLogLevel, _ text: String) {}

    var finishedOutcomes: [PolicyOutcome] { done.withLock { $0.map(\.1) } }
}

/// A verifier that returns a given report.
struct StubVerifier: SignatureVerifier {
    let report: VerificationReport
    func verify(fields: [HeaderField], body: [UInt8], fromAddress: String?, at: Date) -> VerificationReport { report }
}

extension MilterSession {
    /// Feeds one message as the MTA would: MAIL, RCPT, the header fields, the body in pieces.
    func feed(from sender: String = "<alice@example.com>", sasl: String? = nil, recipients: [String] = ["<bob@example.net>"],
              fields: [(String, String)], body: String, pieceSize: Int = 7) {
        envelopeFrom(sender: sender, saslLogin: sasl)
        for r in recipients { envelopeRecipient(r, sink: RecordingSink()) }
        // Without SMFIP_HDR_LEADSPC the MTA gives values without the space after the colon.
        for (name, value) in fields { header(name: Array(name.utf8), value: Array(value.utf8)) }
        let bytes = Array(body.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = min(pieceSize, bytes.count - offset)
            bytes[offset..<(offset + n)].withUnsafeBufferPointer { appendBody($0) }
            offset += n
        }
    }
}

let sampleFields = [("From", "Alice <alice@example.com>"), ("To", "bob@example.net"), ("Subject", "hello"),
                    ("X-Tag", "1"), ("x-tag", "2"), ("Content-Type", "text/plain")]
let sampleBody = "Hello Bob,\r\nsee you.\r\n"

/// A value behind a pthread mutex for the tests' delegates. Not `Synchronization.Mutex`: its
/// contended path waits inside the uninstrumented standard library, where ThreadSanitizer
/// (make sanitize) cannot see the hand-over and reports races that are not there.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
