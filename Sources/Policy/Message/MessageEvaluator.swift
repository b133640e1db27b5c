// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Decides about one complete message. The milter binding takes the evaluator in force when a
/// message starts (MAIL FROM) and keeps it to the end, so a reload in between never changes the
/// rules half-way through a message.
public protocol MessageEvaluator: Sendable {
    /// The outcome for `message`: the decision, the edits and the action.
    func evaluate(_ message: MessageContext) -> PolicyOutcome
    /// What happens when the outcome cannot be carried out or the message not collected
    /// (the binding asks these rules; it decides no failure itself).
    var failureRules: FailureRules { get }
    /// The answer to one `RCPT TO` of the transaction `envelope` (no header or body yet);
    /// `transactionClass` is the class of the first accepted recipient, nil for the first.
    func atRecipient(_ recipient: String, envelope: MessageContext, transactionClass: RecipientClass?) -> RecipientAnswer
}

extension MessageEvaluator {
    /// Every recipient accepted: rules without encryption.
    public func atRecipient(_ recipient: String, envelope: MessageContext, transactionClass: RecipientClass?) -> RecipientAnswer {
        .accept
    }
}

extension SigningPolicy: MessageEvaluator {
    public func evaluate(_ message: MessageContext) -> PolicyOutcome {
        evaluate(message, now: Date())
    }

    public var failureRules: FailureRules { configuration.failureRules }
}
