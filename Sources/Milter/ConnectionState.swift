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
    /// The rules this message is decided by, fixed when it started.
    var evaluator: (any MessageEvaluator)?

    init(connection: ConnectionInfo) {
        self.connection = connection
        openConnections.add(1, ordering: .relaxed)
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
        evaluator = nil
    }
}
