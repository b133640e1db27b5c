// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME

/// An error in the configuration file or in a table file it refers to.
///
/// Its description has the form compilers use, so editors can jump to it:
/// `FILE:LINE: message`, or `FILE: message` when no single line is at fault
/// (an unreadable file, a key that is required but missing).
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The file at fault, as it was named (the configuration file, or a table file's resolved path).
    public let file: String
    /// The 1-based line number, or nil when the problem concerns the whole file.
    public let line: Int?
    /// What is wrong, without the location prefix.
    public let message: String

    /// Creates an error located at `file` and, when given, `line`.
    public init(file: String, line: Int?, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `FILE:LINE: message` or `FILE: message`.
    public var description: String {
        if let line {
            return "\(file):\(line): \(message)"
        }
        return "\(file): \(message)"
    }

    /// Same as `description`, so `localizedDescription` is useful too.
    public var errorDescription: String? { description }
}

/// A problem with one value, before the caller knows which file, line and key it came from.
///
/// Value parsers throw it; the file parsers wrap it into a `ConfigurationError` with the location.
struct ValueProblem: Error, Sendable, Equatable {
    /// Why the value is bad, e.g. "expected sha256, sha384 or sha512".
    let reason: String

    init(_ reason: String) {
        self.reason = reason
    }
}

/// Quotes `text` for an error message: double quotes around it, with quotes, backslashes and
/// control characters escaped, and very long values shortened so a log line stays readable.
func quoted(_ text: some StringProtocol) -> String {
    let limit = 200
    var out = "\""
    var count = 0
    for scalar in text.unicodeScalars {
        if count == limit {
            out += "..."
            break
        }
        count += 1
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        case "\n": out += "\\n"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

extension TextFile.ReadError {
    /// The message for an unreadable configuration or table file, e.g.
    /// `cannot read "/etc/x": No such file or directory`.
    var reason: String { "cannot read \(quoted(path)): \(problem)" }
}
