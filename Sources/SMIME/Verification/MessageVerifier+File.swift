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
        let start = Self.startOfHeader(bytes)
        let parsed: MIMEEntity
        do {
            parsed = try MIMEParser.parse(message: Array(bytes[start...]), limits: options.limits)
        } catch {
            return VerificationReport(result: .neutral, reason: "the message cannot be processed: \(error)")
        }
        let body = Array(parsed.body)
        return verify(fields: parsed.fields, body: body, fromAddress: Self.fromAddress(parsed.fields), at: time)
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
