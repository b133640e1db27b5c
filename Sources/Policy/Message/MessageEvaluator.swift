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
}

extension SigningPolicy: MessageEvaluator {
    public func evaluate(_ message: MessageContext) -> PolicyOutcome {
        evaluate(message, now: Date())
    }

    public var failureRules: FailureRules { configuration.failureRules }
}
