// SPDX-License-Identifier: Apache-2.0
/// Why a message counts as originating here (the rule OpenDKIM users know). Mail that
/// originates here is signed; all other mail is inbound and verified. This is the only place
/// that rule is written down: `MessagePolicy` asks it once per message and hands the answer to
/// `SigningPolicy` (whose own `evaluate(_:now:)`, for the `sign` command, asks it too).
public enum MessageOrigin: String, Sendable, Equatable {
    /// The local `sendmail` command or pickup (non-SMTP mail).
    case localSubmission = "local submission"
    /// The client authenticated with SASL (`{auth_authen}`).
    case sasl = "sasl"
    /// The client address is in `InternalHosts`.
    case internalHost = "internal host"

    /// Why `message` originates here, or nil when it is inbound mail.
    public static func of(_ message: MessageContext, internalHosts: NetworkList) -> MessageOrigin? {
        if message.connection.isNonSMTP { return .localSubmission }
        if message.saslLogin != nil { return .sasl }
        if let address = message.connection.clientAddress, internalHosts.contains(address) {
            return .internalHost
        }
        return nil
    }
}
