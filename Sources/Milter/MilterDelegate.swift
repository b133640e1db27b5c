// SPDX-License-Identifier: Apache-2.0
import Policy

/// What the libmilter binding asks of the program that runs it. The binding only moves bytes
/// between libmilter and the policy; deciding and logging happen behind this protocol.
///
/// Methods are called on libmilter's worker threads, concurrently for different connections.
public protocol MilterDelegate: Sendable {
    /// The rules in force now. The binding asks at the start of each message (MAIL FROM) and
    /// decides the message with them at end-of-message, whatever reloads happen in between.
    func currentEvaluator() -> any MessageEvaluator
    /// Called once per message after its outcome was carried out (or failed to be): the place
    /// for the one log line per message. `outcome` reflects what really happened.
    func finished(_ message: MessageContext, outcome: PolicyOutcome, milliseconds: Double)
    /// A log line that is not about one message (setup, protocol problems).
    func log(_ level: MilterLogLevel, _ text: String)
    /// Where large bodies are spooled, asked at the start of each message; nil keeps every
    /// body in memory.
    func spoolSettings() -> SpoolSettings?
    /// A recipient the policy did not accept at RCPT time (its reply is already set): for the
    /// log and the metrics.
    func recipientRefused(_ recipient: String, answer: RecipientAnswer, queueID: String?)
    /// `MaxConnections`, asked at each connect; nil sets no limit.
    func connectionLimit() -> Int?
    /// `MaxConcurrentMessages`, asked at each end-of-message; nil or 0 sets no limit.
    func messageWorkLimit() -> Int?
}

extension MilterDelegate {
    public func spoolSettings() -> SpoolSettings? { nil }
    public func recipientRefused(_ recipient: String, answer: RecipientAnswer, queueID: String?) {}
    public func connectionLimit() -> Int? { nil }
    public func messageWorkLimit() -> Int? { nil }
}

public enum MilterLogLevel: Sendable {
    case error, warning, notice, info, debug
}
