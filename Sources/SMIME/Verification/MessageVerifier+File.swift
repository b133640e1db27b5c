// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME

extension MessageVerifier {
    /// Verifies a whole stored message (a `.eml` file), as `smime-milter verify` does.
    ///
    /// The bytes are used as they are, not converted to CRLF first: the verifier canonicalises
    /// the signed part itself, and a binary (DER) signature part would be damaged by a line-end
    /// conversion. A leading mbox `From ` line or HTTP request line (AS2 captures) is skipped. The
    /// From address is the single mailbox of the From field (nil when there are none or several).
    public func verify(message bytes: [UInt8], at time: Date) -> VerificationReport {
        let stored: (fields: [HeaderField], body: [UInt8])
        do {
            stored = try storedMessage(bytes)
        } catch {
            return Self.unprocessable(error)
        }
        return verify(fields: stored.fields, body: stored.body, fromAddress: Self.fromAddress(stored.fields), at: time)
    }

    /// The header fields and body of a stored message, as the milter is given them (a leading
    /// mbox `From ` line or HTTP request line skipped, line ends as stored).
    public func storedMessage(_ bytes: [UInt8]) throws -> (fields: [HeaderField], body: [UInt8]) {
        let start = Self.startOfHeader(bytes)
        let parsed = try MIMEParser.parse(message: Array(bytes[start...]), limits: options.limits)
        return (parsed.fields, Array(parsed.body))
    }

    /// The report for a message that cannot even be split into header and body.
    public static func unprocessable(_ error: any Error) -> VerificationReport {
        VerificationReport(result: .neutral, reason: "the message cannot be processed: \(error)")
    }

    /// The address of the single mailbox in From, lower-cased; nil when absent or ambiguous.
    public static func fromAddress(_ fields: [HeaderField]) -> String? {
        guard let from = fields.first(named: "From"),
              let boxes = try? AddressList.mailboxes(in: from.value), boxes.count == 1
        else { return nil }
        return boxes[0].normalisedAddress
    }

    /// Skips a first line that is an mbox separator (`From ...`) or an HTTP request line
    /// (`POST /as2 HTTP/1.1`), which AS2 captures start with.
    static func startOfHeader(_ bytes: [UInt8]) -> Int {
        guard let lf = bytes.prefix(1_000).firstIndex(of: 0x0A) else { return 0 }
        let line = String(decoding: bytes[..<lf], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("From ") { return lf + 1 }
        let words = line.split(separator: " ")
        if words.count == 3, words[0].allSatisfy({ $0.isUppercase }), words[2].hasPrefix("HTTP/") { return lf + 1 }
        return 0
    }
}
