// SPDX-License-Identifier: Apache-2.0
import Policy

/// The one log line per message: queue id, From, decision and why (for verified mail the
/// `smime=` result), identity or signer, the action when not accept, time spent.
/// Values never include key material: the policy puts only names and reasons in `details`.
enum MessageLogLine {
    static func format(_ message: MessageContext, outcome: PolicyOutcome, milliseconds: Double) -> String {
        var parts: [String] = []
        parts.append("\(message.queueID ?? "NOQUEUE"):")
        parts.append("from=<\(outcome.fromAddress ?? "")>")
        parts.append("decision=\(outcome.decision.keyword)")
        switch outcome.decision {
        case let .skipped(reason), let .unauthorised(reason), let .error(reason), let .stripped(reason):
            parts.append("reason=\(quote(reason))")
        case .signed:
            break
        case let .verified(result, reason):
            parts.append("smime=\(result.rawValue)")
            if let reason { parts.append("reason=\(quote(reason))") }
        }
        for (key, value) in outcome.details {
            parts.append("\(key)=\(quote(value))")
        }
        if outcome.action != .accept { parts.append("action=\(outcome.action.keyword)") }
        parts.append("ms=\(String(format: "%.1f", milliseconds))")
        return parts.joined(separator: " ")
    }

    private static func quote(_ s: String) -> String {
        let clean = s.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: "")
        if clean.contains(" ") || clean.contains("\"") || clean.isEmpty {
            return "\"" + clean.replacingOccurrences(of: "\"", with: "'") + "\""
        }
        return clean
    }
}
