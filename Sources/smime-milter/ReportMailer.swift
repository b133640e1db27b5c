// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Policy
import SMIME

/// Sends report mail (expiry warnings, broken-signature reports) through the local sendmail
/// command (`SendmailCommand`), as `sendmail -i -- RECIPIENT` with the message on standard input.
/// Postfix's sendmail only hands the message to postdrop, so this does not wait for delivery.
struct ReportMailer: Sendable {
    let sendmailCommand: String
    let logger: Logger
    /// A sendmail command that hangs (a full queue directory, a stuck postdrop) must not hold the
    /// report thread for ever.
    static let timeout: Double = 60

    /// Sends `mail` and logs the outcome; `what` names the kind of report in log lines.
    /// Blocks until the command exits (call it off libmilter's threads when that matters).
    /// True when the command accepted the message.
    @discardableResult
    func send(_ mail: ReportMail, what: String) -> Bool {
        let result: BoundedCommand.Result
        do {
            result = try BoundedCommand.run([sendmailCommand, "-i", "--", mail.recipient], input: Array(mail.message.utf8),
                                            timeout: Self.timeout)
        } catch {
            logger.error("\(what) to \(mail.recipient): cannot run \(sendmailCommand): \(error)")
            return false
        }
        guard result.status == 0 else {
            let cause = result.timedOut ? "did not finish within \(Int(Self.timeout)) s and was killed"
                : result.signal.map { "was killed by signal \($0)" } ?? "exited with \(result.status)"
            let words = String(decoding: result.errors.prefix(512), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            logger.error("\(what) to \(mail.recipient): \(sendmailCommand) \(cause)\(words.isEmpty ? "" : ": " + words)")
            return false
        }
        logger.notice("\(what) sent to \(mail.recipient)")
        return true
    }
}
