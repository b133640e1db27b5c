// SPDX-License-Identifier: Apache-2.0
import MIME

/// What the MTA told us about the SMTP client of one connection.
public struct ConnectionInfo: Sendable, Equatable {
    /// The client's IP address in text form, nil when the MTA gave none.
    public var clientAddress: String?
    /// The client's host name as the MTA resolved it (or `[addr]`).
    public var clientHostname: String?
    /// True for mail that did not arrive over SMTP: Postfix's `sendmail` command / pickup
    /// (non_smtpd_milters, which Postfix presents as a connect from 127.0.0.1 port 0) or
    /// Sendmail's local submission (no host address).
    public var isNonSMTP: Bool

    public init(clientAddress: String?, clientHostname: String? = nil, isNonSMTP: Bool = false) {
        self.clientAddress = clientAddress
        self.clientHostname = clientHostname
        self.isNonSMTP = isNonSMTP
    }
}

/// Everything the policy needs to decide about one message. Built the same way by the milter
/// binding (from libmilter callbacks) and by the offline `sign` command (from a file), so both
/// run exactly the same decision.
public struct MessageContext: Sendable {
    /// The MTA's queue id (macro `i`), for the log line.
    public var queueID: String?
    public var connection: ConnectionInfo
    /// The SASL login name (macro `{auth_authen}`), nil when the client did not authenticate.
    public var saslLogin: String?
    /// The envelope sender as given in MAIL FROM (with or without angle brackets).
    public var envelopeSender: String
    public var recipients: [String]
    /// The message's header fields in order, values exactly as received.
    public var fields: [HeaderField]
    /// The message body with CRLF line ends: in memory, or a large body that stayed in the
    /// milter's spool file. The signing path can stream a spooled one; every other path reads
    /// it with `body.bytes()`, and a read that fails goes to the `FailureRules`.
    public var body: MessageBody

    public init(
        queueID: String? = nil, connection: ConnectionInfo, saslLogin: String? = nil,
        envelopeSender: String, recipients: [String] = [], fields: [HeaderField], body: MessageBody
    ) {
        self.queueID = queueID
        self.connection = connection
        self.saslLogin = saslLogin.flatMap { $0.isEmpty ? nil : $0 }
        self.envelopeSender = envelopeSender
        self.recipients = recipients
        self.fields = fields
        self.body = body
    }

    /// A context whose body is these bytes in memory.
    public init(
        queueID: String? = nil, connection: ConnectionInfo, saslLogin: String? = nil,
        envelopeSender: String, recipients: [String] = [], fields: [HeaderField], body: [UInt8]
    ) {
        self.init(queueID: queueID, connection: connection, saslLogin: saslLogin, envelopeSender: envelopeSender,
                  recipients: recipients, fields: fields, body: .memory(body))
    }
}
