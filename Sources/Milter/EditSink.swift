// SPDX-License-Identifier: Apache-2.0
import Policy

/// Where a `MilterSession` carries out a message's outcome: the MTA's edit requests, its
/// quarantine and the SMTP reply. In the milter it is libmilter (`LibmilterSink`); in the tests,
/// a recording fake. The session hands the edits over in `MessageEditor.mtaOrder`, one request
/// at a time, as the MTA applies them.
protocol EditSink {
    /// One header change, deletion, insertion or addition, or the body replacement (from memory
    /// or piece by piece from a file). Throws `EditFailure` when the MTA refuses it.
    func apply(_ edit: MessageEdit) throws
    /// Asks the MTA to put the message in its hold queue. Throws `EditFailure` when refused.
    func quarantine(reason: String) throws
    /// The SMTP reply for a tempfail or reject.
    func setReply(_ reply: SMTPReply)
}

/// The MTA refused an edit or the quarantine (or a spooled replacement body could not be read).
struct EditFailure: Error, CustomStringConvertible {
    let description: String
}
