// SPDX-License-Identifier: Apache-2.0
import MIME
import Policy

/// One MTA connection: what the callbacks collect (connection facts, the message in progress)
/// and what they do with it, without libmilter. The C callbacks in `Callbacks.swift` read the
/// macros and arguments and forward to these methods; `endOfMessage` gets an `EditSink`, so
/// tests drive a session with a recording fake as they would the MTA.
///
/// Kept behind `smfi_setpriv`. libmilter serialises the callbacks of one connection (they may
/// run on different threads, never at the same time), so this class needs no lock of its own.
final class MilterSession {
    /// Asked for the rules, the spool settings and the log; nil only when the milter is not set up.
    let delegate: (any MilterDelegate)?
    var connection: ConnectionInfo
    /// Whether `SMFIP_HDR_LEADSPC` was negotiated: header values then keep their leading space
    /// and values we add are used byte for byte.
    var keepsLeadingSpace = false
    /// Protocol steps for which the MTA expects no reply (SMFIP_NR_*), negotiated per connection.
    var noReplySteps: UInt = 0

    // The message in progress; `resetMessage` forgets it.
    var saslLogin: String?
    var envelopeSender = ""
    var recipients: [String] = []
    /// The class of the first accepted recipient (encryption), which the later ones must share.
    var transactionClass: RecipientClass?
    var fields: [HeaderField] = []
    var body: [UInt8] = []
    /// Where the body goes once it passes `spoolSettings.threshold`; nil while it is in `body`.
    var spool: BodySpool?
    /// The spool settings of this message, fixed when it started.
    var spoolSettings: SpoolSettings?
    /// A spool file could not be written; the failure rules decide at end-of-message.
    var spoolFailure: String?
    /// The rules this message is decided by, fixed when it started.
    var evaluator: (any MessageEvaluator)?

    /// More recipients and header fields than any real message has; past them we stop
    /// collecting (the MIME layer would refuse the message anyway) rather than grow without bound.
    static let maximumRecipients = 10_000
    static let maximumHeaderFields = 10_000

    /// Where end-of-message waits for its turn (`MaxConcurrentMessages`): the process's one gate.
    let gate: MessageWorkGate

    /// Set when the milter is stopping (the process's one flag).
    let shutdown: ShutdownFlag

    init(delegate: (any MilterDelegate)?, connection: ConnectionInfo = ConnectionInfo(clientAddress: nil),
         gate: MessageWorkGate = messageWorkGate, shutdown: ShutdownFlag = milterShutdown) {
        self.delegate = delegate
        self.connection = connection
        self.gate = gate
        self.shutdown = shutdown
        openConnections.add(1, ordering: .relaxed)
    }

    deinit {
        openConnections.subtract(1, ordering: .relaxed)
    }

    /// `connect`: the client's host name and address. Postfix presents non-SMTP mail (sendmail
    /// command, pickup) as a connect from 127.0.0.1 port 0; Sendmail gives no address for
    /// local submissions.
    ///
    /// The answer is `FailureRules.connectionLimit`'s when this connection is one more than
    /// `MaxConnections` (the session counts itself), else accept.
    @discardableResult
    func connect(hostname: String?, address: String?, port: Int?, hasAddress: Bool) -> MilterAction {
        let nonSMTP = !hasAddress || (address == "127.0.0.1" && port == 0)
        connection = ConnectionInfo(clientAddress: address, clientHostname: hostname, isNonSMTP: nonSMTP)
        guard let limit = delegate?.connectionLimit() else { return .accept }
        let open = openConnections.load(ordering: .relaxed)
        guard let refusal = FailureRules.connectionLimit(open: open, limit: limit) else { return .accept }
        let client = [hostname, address.map { "[\($0)]" }].compactMap { $0 }.joined(separator: " ")
        delegate?.log(.warning, "connection from \(client.isEmpty ? "unknown" : client) refused with tempfail: "
                      + "\(open) open connections, more than MaxConnections \(limit)")
        return refusal
    }

    /// `MAIL FROM`: a new message starts, decided by the rules in force now.
    func envelopeFrom(sender: String?, saslLogin: String?) {
        resetMessage()
        evaluator = delegate?.currentEvaluator()
        spoolSettings = delegate?.spoolSettings()
        if let sender { envelopeSender = sender }
        self.saslLogin = saslLogin
    }

    /// `RCPT TO`: the policy's answer for this recipient. A refused one is not collected and
    /// its reply goes to `sink`; the action is what the callback returns.
    @discardableResult
    func envelopeRecipient(_ recipient: String, sink: some EditSink) -> MilterAction {
        let envelope = MessageContext(connection: connection, saslLogin: saslLogin, envelopeSender: envelopeSender,
                                      recipients: recipients, fields: [], body: .empty)
        let answer = evaluator?.atRecipient(recipient, envelope: envelope, transactionClass: transactionClass) ?? .accept
        if let reply = answer.action.reply {
            sink.setReply(reply)
            delegate?.recipientRefused(recipient, answer: answer, queueID: nil)
            return answer.action
        }
        if transactionClass == nil { transactionClass = answer.recipientClass }
        if recipients.count < Self.maximumRecipients { recipients.append(recipient) }
        return answer.action
    }

    /// One header field; `value` as the MTA gave it (without its leading space unless
    /// `keepsLeadingSpace`).
    func header(name: [UInt8], value: [UInt8]) {
        guard fields.count < Self.maximumHeaderFields else { return }
        var bytes = value
        // Keep the contract of HeaderField: the value as it stood after the colon.
        if !keepsLeadingSpace { bytes.insert(0x20, at: 0) }
        fields.append(HeaderField(name: HeaderText.decode(name).text, rawValue: bytes))
    }

    /// Adds body bytes: in memory up to the threshold, then to a spool file.
    func appendBody(_ bytes: UnsafeBufferPointer<UInt8>) {
        if spoolFailure != nil { return }
        if spool == nil, let settings = spoolSettings, body.count + bytes.count > settings.threshold {
            do {
                let file = try BodySpool(directory: settings.directory)
                try body.withUnsafeBytes { try file.append($0) }
                spool = file
                body = []
            } catch {
                spoolFailure = "\(error)"
                body = []
                return
            }
        }
        if let spool {
            do { try spool.append(UnsafeRawBufferPointer(bytes)) } catch { spoolFailure = "\(error)" }
        } else {
            body.append(contentsOf: bytes)
        }
    }

    /// End-of-message: builds the context, asks the policy, hands the outcome to `sink` and
    /// returns the action the MTA is told (accept covers quarantine: its request went to the
    /// sink). Every failure (a body that could not be collected, an edit the MTA refused) is
    /// decided by the evaluator's `FailureRules`. Forgets the message afterwards.
    func endOfMessage(queueID: String?, sink: some EditSink) -> MilterAction {
        inFlight.add(1, ordering: .sequentiallyConsistent)
        defer {
            resetMessage()
            inFlight.subtract(1, ordering: .sequentiallyConsistent)
        }
        guard let delegate else { return .tempfail(FailureRules.notProcessed) }
        // The message's context before its body is taken: what a refusal's log line shows.
        let context = MessageContext(
            queueID: queueID, connection: connection, saslLogin: saslLogin,
            envelopeSender: envelopeSender, recipients: recipients, fields: fields, body: .empty)
        // A refusal before the policy runs: tempfail with its reason, logged like any message.
        func refuse(_ outcome: PolicyOutcome, milliseconds: Double) -> MilterAction {
            sink.setReply(outcome.action.reply!)
            delegate.finished(context, outcome: outcome, milliseconds: milliseconds)
            return outcome.action
        }
        // Read after counting this message in inFlight (see ShutdownFlag).
        if shutdown.isSet { return refuse(FailureRules.stopping, milliseconds: 0) }
        let evaluator = self.evaluator ?? delegate.currentEvaluator()
        let limit = delegate.messageWorkLimit() ?? 0
        guard gate.enter(limit: limit) else {
            return refuse(FailureRules.busy(limit: limit, waited: gate.maximumWait), milliseconds: gate.maximumWait * 1000)
        }
        defer { gate.leave() }
        // The time the milter itself spends (decision, signing or verifying, edits); the SMTP
        // dialogue before end-of-message is the client's and the MTA's time, not ours.
        let started = ContinuousClock.now
        var message = context
        var outcome: PolicyOutcome
        do {
            // takeBody lets go of the session's copy: the context holds the only one.
            message.body = try takeBody()
            outcome = evaluator.evaluate(message)
        } catch {
            outcome = evaluator.failureRules.bodyNotCollected("\(error)")
        }
        outcome = Self.carryOut(outcome, rules: evaluator.failureRules, sink: sink)
        let elapsed = ContinuousClock.now - started
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        delegate.finished(message, outcome: outcome, milliseconds: ms)
        return outcome.action
    }

    /// Carries `outcome` out through `sink`: the edits in the MTA's order and the quarantine
    /// for an accepted message (the MTA discards the edits of a refused one, so none are made),
    /// the reply for a refused one. Returns the outcome as it really happened.
    static func carryOut(_ outcome: PolicyOutcome, rules: FailureRules, sink: some EditSink) -> PolicyOutcome {
        var outcome = outcome
        switch outcome.action {
        case .accept, .quarantine:
            do {
                for edit in MessageEditor.mtaOrder(outcome.edits) { try sink.apply(edit) }
                if case let .quarantine(reason) = outcome.action { try sink.quarantine(reason: reason) }
            } catch {
                outcome = rules.editFailed("\(error)", outcome: outcome)
            }
        case .tempfail, .reject:
            break
        }
        if let reply = outcome.action.reply { sink.setReply(reply) }
        return outcome
    }

    /// The collected body: in memory, or (spooled) a read-only view of the spool file, which
    /// stays until the message is reset.
    func takeBody() throws -> MessageBody {
        if let failure = spoolFailure { throw BodySpool.Failure(description: failure) }
        if let spool { return .file(try spool.bodyFile()) }
        let bytes = body
        body = []
        return .memory(bytes)
    }

    /// `abort`: forgets the message in progress.
    func abort() {
        resetMessage()
    }

    /// Forgets the message in progress; the connection facts stay (several messages may follow
    /// on one connection).
    func resetMessage() {
        saslLogin = nil
        envelopeSender = ""
        recipients = []
        transactionClass = nil
        fields = []
        body = []
        spool = nil          // removes the file
        spoolSettings = nil
        spoolFailure = nil
        evaluator = nil
    }
}
