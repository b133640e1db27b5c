// SPDX-License-Identifier: Apache-2.0
/// Splits a whole message (a file or a queue entry) into its header fields and body.
public enum MessageParser {
    /// Splits `bytes` (CRLF, bare LF or mixed line ends) into the top-level header fields and the body.
    ///
    /// Field values keep their folds as they appear in the input. The body is returned with CRLF line
    /// ends (`LineEnds.toCRLF`). A leading mbox `From ` separator line is skipped. If the header runs
    /// into a line that is not a field (no blank line), that line starts the body.
    ///
    /// - Throws: `MIMEError.notAMessage` when the first line is neither a header field nor blank, and
    ///   `MIMEError.tooManyHeaderFields` over `limits.maxHeaderFields`.
    public static func split(_ bytes: [UInt8], limits: MIMELimits = MIMELimits())
        throws -> (fields: [HeaderField], body: [UInt8]) {
        var start = 0
        if bytes.starts(with: Array("From ".utf8)) {
            while start < bytes.count && bytes[start] != Byte.lf { start += 1 }
            start = min(start + 1, bytes.count)
        }
        let result = try HeaderParser.parse(bytes, in: start..<bytes.count, limits: limits)
        if result.fields.isEmpty && result.endedByNonFieldLine {
            throw MIMEError.notAMessage("the first line is not a header field")
        }
        return (result.fields, LineEnds.toCRLF(bytes[result.bodyStart...]))
    }
}
