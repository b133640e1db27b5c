// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Decides about one complete message. The milter binding takes the evaluator in force when a
/// message starts (MAIL FROM) and keeps it to the end, so a reload in between never changes the
/// rules half-way through a message.
public protocol MessageEvaluator: Sendable {
    func evaluate(_ message: MessageContext) -> PolicyOutcome
}

extension SigningPolicy: MessageEvaluator {
    public func evaluate(_ message: MessageContext) -> PolicyOutcome {
        evaluate(message, now: Date())
    }
}
