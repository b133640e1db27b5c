// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A short report the policy asks to be mailed (through the local sendmail command) after a
/// message was handled, e.g. when a broken client signature was stripped. How often reports
/// go out is the executable's business (`ReportRateLimiter`).
public struct ReportMail: Sendable, Equatable {
    /// The recipient (`BrokenSignatureReport`).
    public var recipient: String
    /// The Subject, plain ASCII.
    public var subject: String
    /// The body text, lines separated by "\n".
    public var text: String
    /// What the rate limit counts: reports with the same key go at most once per interval
    /// (the sender's address, so one noisy sender gives one report an hour).
    public var rateKey: String

    public init(recipient: String, subject: String, text: String, rateKey: String) {
        self.recipient = recipient
        self.subject = subject
        self.text = text
        self.rateKey = rateKey
    }

    /// The whole message as the sendmail command reads it (LF line ends; sendmail adds From,
    /// Date and Message-ID). Auto-Submitted keeps vacation responders from answering it.
    public var message: String {
        """
        To: \(recipient)
        Subject: \(subject)
        Auto-Submitted: auto-generated
        MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: 8bit

        \(text)

        """
    }
}
