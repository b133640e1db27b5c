// SPDX-License-Identifier: Apache-2.0
import MIME
import Policy

/// The state of one MTA connection, kept behind `smfi_setpriv`. libmilter serialises the
/// callbacks of one connection (they may run on different threads, never at the same time), so
/// this class needs no lock of its own.
final class ConnectionState {
    var connection: ConnectionInfo
    /// Whether `SMFIP_HDR_LEADSPC` was negotiated: header values then keep their leading space
    /// and values we add are used byte for byte.
    var keepsLeadingSpace = false
    /// Protocol steps for which the MTA expects no reply (SMFIP_NR_*), negotiated per connection.
    var noReplySteps: UInt = 0

    var saslLogin: String?
    var envelopeSender = ""
    var recipients: [String] = []
    var fields: [HeaderField] = []
    var body: [UInt8] = []
    /// Where the body goes once it passes `spoolSettings.threshold`; nil while it is in `body`.
    var spool: BodySpool?
    /// The spool settings of this message, fixed when it started.
    var spoolSettings: SpoolSettings?
    /// A spool file could not be written; the message is tempfailed at its end.
    var spoolFailure: String?
    /// The rules this message is decided by, fixed when it started.
    var evaluator: (any MessageEvaluator)?

    init(connection: ConnectionInfo) {
        self.connection = connection
        openConnections.add(1, ordering: .relaxed)
    }

    /// Adds body bytes: in memory up to the threshold, then to a spool file.
    func appendBody(_ bytes: UnsafeBufferPointer<UInt8>) {
        if spoolFailure != nil { return }
        if spool == nil, let settings = spoolSettings, body.count + bytes.count > settings.threshold {
            do {
                let file = try BodySpool(directory: settings.directory)
                try body.withUnsafeBytes { try file.append($0) }
                spool = file
                body = []
            } catch {
                spoolFailure = "\(error)"
                body = []
                return
            }
        }
        if let spool {
            do { try spool.append(UnsafeRawBufferPointer(bytes)) } catch { spoolFailure = "\(error)" }
        } else {
            body.append(contentsOf: bytes)
        }
    }

    /// The collected body: in memory, or (spooled) a read-only view of the spool file, which
    /// stays until the message is reset.
    func takeBody() throws -> (bytes: [UInt8], file: BodyFile?) {
        if let failure = spoolFailure { throw BodySpool.Failure(description: failure) }
        if let spool { return ([], try spool.bodyFile()) }
        let bytes = body
        body = []
        return (bytes, nil)
    }

    deinit {
        openConnections.subtract(1, ordering: .relaxed)
    }

    /// Forgets the message in progress; the connection facts stay (several messages may follow
    /// on one connection).
    func resetMessage() {
        saslLogin = nil
        envelopeSender = ""
        recipients = []
        fields = []
        body = []
        spool = nil          // removes the file
        spoolSettings = nil
        spoolFailure = nil
        evaluator = nil
    }
}
