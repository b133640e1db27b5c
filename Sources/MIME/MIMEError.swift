// SPDX-License-Identifier: Apache-2.0
/// Why a message could not be parsed or made 7-bit.
///
/// Every case carries enough context for a log line; none carries message content beyond
/// short names (field names, media types), so logging an error never leaks a message body.
public enum MIMEError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The input does not start with a header section (first line is neither a field nor blank).
    case notAMessage(String)
    /// A header section has more fields than `MIMELimits.maxHeaderFields`.
    case tooManyHeaderFields(limit: Int)
    /// Entities are nested deeper than `MIMELimits.maxDepth`.
    case tooDeep(limit: Int)
    /// The message has more entities than `MIMELimits.maxParts`.
    case tooManyParts(limit: Int)
    /// An entity cannot be made 7-bit without changing its meaning.
    case cannotMake7Bit(section: String, reason: String)
    /// An address list could not be parsed.
    case invalidAddress(String)

    public var description: String {
        switch self {
        case .notAMessage(let why): return "not a message: \(why)"
        case .tooManyHeaderFields(let limit): return "header section has more than \(limit) fields"
        case .tooDeep(let limit): return "MIME entities nested deeper than \(limit) levels"
        case .tooManyParts(let limit): return "message has more than \(limit) MIME entities"
        case .cannotMake7Bit(let section, let reason):
            return "cannot make MIME entity \(section.isEmpty ? "(top level)" : section) 7-bit: \(reason)"
        case .invalidAddress(let why): return "invalid address: \(why)"
        }
    }
}
