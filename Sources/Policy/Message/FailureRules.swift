// SPDX-License-Identifier: Apache-2.0
import MIME
/// Every rule for a message that cannot be handled as decided, and every tempfail reply, in one
/// place: what the MTA is told when signing fails or a spooled body cannot be read or written
/// (`OnError`), when the MTA refuses an edit, when a required signature gives `temperror`, and
/// when the signing certificate has expired. The policies and the milter binding ask these
/// functions; none of them decides a failure on its own.
public struct FailureRules: Sendable, Equatable {
    /// `OnError`.
    public let onError: OnErrorAction

    public init(onError: OnErrorAction) {
        self.onError = onError
    }

    /// The reply for a message that could not be processed: the reason stays in the log,
    /// the client learns only that it should try again.
    public static let notProcessed = SMTPReply(
        code: "451", xcode: "4.3.0", text: "smime-milter: message could not be processed, try again later")

    /// The policy could not do its work (signing failed, a spooled body could not be read):
    /// `OnError` says tempfail (the client retries) or accept (the message goes on unchanged,
    /// so its edits are dropped). The decision records `reason` for the log line.
    public func error(_ reason: String, outcome: PolicyOutcome) -> PolicyOutcome {
        var failed = outcome
        failed.decision = .error(reason: reason)
        failed.edits = []
        failed.action = onError == .tempfail ? .tempfail(Self.notProcessed) : .accept
        return failed
    }

    /// The body of the message could not be collected (the spool file could not be written):
    /// as `error`; the MTA still holds the whole message, so accept passes it on unchanged.
    public func bodyNotCollected(_ reason: String) -> PolicyOutcome {
        error(reason, outcome: PolicyOutcome(decision: .error(reason: reason)))
    }

    /// The MTA refused one of the edits or the quarantine request: tempfail, whatever
    /// `OnError` says. The MTA keeps the changes made before the refused one until the message
    /// is refused, so accepting would deliver a half-edited message (a body without the
    /// Content-Type that describes it); on tempfail the MTA discards them all.
    public func editFailed(_ reason: String, outcome: PolicyOutcome) -> PolicyOutcome {
        var failed = outcome
        failed.decision = .error(reason: reason)
        failed.action = .tempfail(Self.notProcessed)
        return failed
    }

    /// `OnMissingSignature reject` for a result of `temperror`: the answer may change (a CRL
    /// that could not be read, say), so the client retries instead of being refused for good.
    /// 4.7.5 is RFC 3463's "cryptographic failure".
    public static func temporaryVerificationFailure(_ text: String) -> MilterAction {
        .tempfail(code: "451", xcode: "4.7.5", text: text)
    }

    /// `OnRevocationUnknown tempfail`: the revocation status of the signer's chain could not be
    /// found in time (responder down, stale CRL); the client retries, by when the answer (or
    /// the fetch that went on in the background) is likely in the cache. 4.7.5 as above.
    public static func revocationUnknown(_ reason: String) -> MilterAction {
        let text = PrintableASCII.cleaned("smime-milter: the signer's certificate status cannot be checked now, try again later ("
                                          + String(reason.prefix(200)) + ")")
        return .tempfail(code: "451", xcode: "4.7.5", text: text)
    }

    /// `OnExpiredCertificate tempfail`: the MTA keeps the mail until a new certificate is
    /// installed (the identity's name stays in the log).
    public static let expiredCertificate = MilterAction.tempfail(
        code: "451", xcode: "4.7.0", text: "smime-milter: the sender's signing certificate has expired, try again later")

    /// `OnMissingIdentity tempfail`: the MTA keeps the mail until the sender has an identity.
    public static let missingIdentity = MilterAction.tempfail(
        code: "451", xcode: "4.7.0", text: "smime-milter: no signing certificate for the sender yet, try again later")

    /// `MaxConcurrentMessages`: a message that waited `waited` seconds for one of the `limit`
    /// places and got none. Tempfail whatever `OnError` says: nothing was wrong with the
    /// message, and accepting it unsigned or unverified would change what the policy decides.
    public static func busy(limit: Int, waited: Double) -> PolicyOutcome {
        PolicyOutcome(
            decision: .error(reason: "\(limit) messages were being processed (MaxConcurrentMessages) and this one waited \(Int(waited)) s for its turn"),
            action: .tempfail(code: "451", xcode: "4.3.2", text: "smime-milter: busy, try again later"))
    }

    /// A message whose end-of-message came after the milter began to stop: tempfail whatever
    /// `OnError` says (the MTA keeps it and sends it again once the milter is back).
    public static let stopping = PolicyOutcome(
        decision: .error(reason: "the milter is stopping"),
        action: .tempfail(code: "451", xcode: "4.3.2", text: "smime-milter: stopping, try again later"))

    /// `MaxConnections`: the reply at connect when `open` connections (this one included) pass
    /// `limit`, or nil when the connection is served. 4.3.2 is RFC 3463's "system not accepting
    /// network messages".
    public static func connectionLimit(open: Int, limit: Int) -> MilterAction? {
        guard open > limit else { return nil }
        return .tempfail(code: "451", xcode: "4.3.2",
                         text: "smime-milter: too many connections (\(limit)), try again later")
    }
}

extension Configuration {
    /// The failure rules this configuration sets (`OnError`).
    public var failureRules: FailureRules { FailureRules(onError: onError) }
}
