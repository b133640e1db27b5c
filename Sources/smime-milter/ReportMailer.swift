// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Policy

/// Sends report mail (expiry warnings, broken-signature reports) through the local sendmail
/// command (`SendmailCommand`), as `sendmail -i -- RECIPIENT` with the message on standard input.
/// Postfix's sendmail only hands the message to postdrop, so this does not wait for delivery.
struct ReportMailer: Sendable {
    let sendmailCommand: String
    let logger: Logger

    /// Sends `mail` and logs the outcome; `what` names the kind of report in log lines.
    /// Blocks until the command exits (call it off libmilter's threads when that matters).
    /// True when the command accepted the message.
    @discardableResult
    func send(_ mail: ReportMail, what: String) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: sendmailCommand)
        process.arguments = ["-i", "--", mail.recipient]
        let input = Pipe()
        process.standardInput = input
        do {
            try process.run()
            input.fileHandleForWriting.write(Data(mail.message.utf8))
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
            if process.terminationStatus != 0 {
                logger.error("\(what) to \(mail.recipient): \(sendmailCommand) exited with \(process.terminationStatus)")
                return false
            }
            logger.notice("\(what) sent to \(mail.recipient)")
            return true
        } catch {
            logger.error("\(what) to \(mail.recipient): cannot run \(sendmailCommand): \(error)")
            return false
        }
    }
}
