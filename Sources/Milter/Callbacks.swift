// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CMilter
import MIME
import Policy

// The libmilter callbacks. They are named global functions on purpose: closures written in
// top-level code would be inferred @MainActor and crash when libmilter calls them on its worker
// threads (see docs/ARCHITECTURE.md).

private func state(_ ctx: OpaquePointer?) -> ConnectionState? {
    guard let ctx, let raw = smfi_getpriv(ctx) else { return nil }
    return Unmanaged<ConnectionState>.fromOpaque(raw).takeUnretainedValue()
}

/// The state of this connection, created on first use: `close` and `abort` can arrive without
/// `connect`, and with SMFIP_NOCONNECT there is none.
private func stateCreating(_ ctx: OpaquePointer?) -> ConnectionState? {
    if let s = state(ctx) { return s }
    guard let ctx else { return nil }
    let s = ConnectionState(connection: ConnectionInfo(clientAddress: nil))
    smfi_setpriv(ctx, Unmanaged.passRetained(s).toOpaque())
    return s
}

private func macro(_ ctx: OpaquePointer?, _ name: String) -> String? {
    guard let ctx else { return nil }
    let value = name.withCString { smfi_getsymval(ctx, UnsafeMutablePointer(mutating: $0)) }
    guard let value else { return nil }
    let s = String(cString: value)
    return s.isEmpty ? nil : s
}

/// The reply for a step: SMFIS_NOREPLY when the MTA was told not to expect one.
private func proceed(_ s: ConnectionState?, step: UInt) -> sfsistat {
    if let s, s.noReplySteps & step != 0 { return sfsistat(SMFIS_NOREPLY) }
    return sfsistat(SMFIS_CONTINUE)
}

func milterNegotiate(
    _ ctx: OpaquePointer?, _ f0: UInt, _ f1: UInt, _ f2: UInt, _ f3: UInt,
    _ pf0: UnsafeMutablePointer<UInt>?, _ pf1: UnsafeMutablePointer<UInt>?,
    _ pf2: UnsafeMutablePointer<UInt>?, _ pf3: UnsafeMutablePointer<UInt>?
) -> sfsistat {
    let wantedActions = UInt(SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_QUARANTINE)
    if f0 & UInt(SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY) != UInt(SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY) {
        currentDelegate()?.log(.warning, "MTA does not offer header and body changes; messages cannot be signed")
    }
    // Steps we do not need, and steps we never answer individually: fewer round trips.
    //
    // Only header, end-of-header and body go without replies: the MTA writes them back to
    // back and ends with end-of-message, which is answered. Every step that the SMTP client's
    // next command follows (connect, MAIL, RCPT, DATA) is answered: Postfix writes milter
    // packets with Nagle's algorithm on, so a packet that gets no reply leaves our ACK to the
    // delayed-ACK timer and holds the MTA's next packet back by ~40 ms. Negotiating no-reply
    // for those (or skipping DATA, whose macros Postfix still sends) held one SMTP session over
    // an inet socket to ~20 msg/s; answered, ~140-210 msg/s, like a unix socket.
    let skipSteps = UInt(SMFIP_NOHELO | SMFIP_NOUNKNOWN)
    let noReply = UInt(SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY)
    let wantedSteps = skipSteps | noReply | UInt(SMFIP_HDR_LEADSPC)
    let agreed = f1 & wantedSteps
    pf0?.pointee = f0 & wantedActions
    pf1?.pointee = agreed
    pf2?.pointee = 0
    pf3?.pointee = 0
    if let s = stateCreating(ctx) {
        s.keepsLeadingSpace = agreed & UInt(SMFIP_HDR_LEADSPC) != 0
        s.noReplySteps = agreed & noReply
    }
    return sfsistat(SMFIS_CONTINUE)
}

func milterConnect(
    _ ctx: OpaquePointer?, _ hostname: UnsafeMutablePointer<CChar>?, _ hostaddr: UnsafeMutablePointer<sockaddr>?
) -> sfsistat {
    guard let s = stateCreating(ctx) else { return sfsistat(SMFIS_TEMPFAIL) }
    let name = hostname.map { String(cString: $0) }
    let (address, port) = SocketAddress.describe(hostaddr)
    // Postfix presents non-SMTP mail (sendmail command, pickup) as a connect from 127.0.0.1
    // port 0; Sendmail gives no address for local submissions.
    let nonSMTP = hostaddr == nil || (address == "127.0.0.1" && port == 0)
    s.connection = ConnectionInfo(clientAddress: address, clientHostname: name, isNonSMTP: nonSMTP)
    return proceed(s, step: UInt(SMFIP_NR_CONN))
}

func milterEnvFrom(_ ctx: OpaquePointer?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> sfsistat {
    guard let s = stateCreating(ctx) else { return sfsistat(SMFIS_TEMPFAIL) }
    s.resetMessage()
    let delegate = currentDelegate()
    s.evaluator = delegate?.currentEvaluator()
    s.spoolSettings = delegate?.spoolSettings()
    if let argv, let first = argv.pointee { s.envelopeSender = String(cString: first) }
    s.saslLogin = macro(ctx, "{auth_authen}")
    return proceed(s, step: UInt(SMFIP_NR_MAIL))
}

func milterEnvRcpt(_ ctx: OpaquePointer?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> sfsistat {
    let s = state(ctx)
    if let s, let argv, let first = argv.pointee, s.recipients.count < 10_000 {
        s.recipients.append(String(cString: first))
    }
    return proceed(s, step: UInt(SMFIP_NR_RCPT))
}

func milterHeader(
    _ ctx: OpaquePointer?, _ name: UnsafeMutablePointer<CChar>?, _ value: UnsafeMutablePointer<CChar>?
) -> sfsistat {
    guard let s = state(ctx) else { return sfsistat(SMFIS_CONTINUE) }
    if let name, let value, s.fields.count < maximumHeaderFields {
        var bytes = cBytes(value)
        // Keep the contract of HeaderField: the value as it stood after the colon.
        if !s.keepsLeadingSpace { bytes.insert(0x20, at: 0) }
        s.fields.append(HeaderField(name: HeaderText.decode(cBytes(name)).text, rawValue: bytes))
    }
    return proceed(s, step: UInt(SMFIP_NR_HDR))
}

/// More header fields than any real message has; past it we stop collecting (the MIME layer
/// would refuse the message anyway) rather than grow without bound.
private let maximumHeaderFields = 10_000

private func cBytes(_ pointer: UnsafeMutablePointer<CChar>) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)).bindMemory(to: UInt8.self))
}

func milterEndOfHeaders(_ ctx: OpaquePointer?) -> sfsistat {
    proceed(state(ctx), step: UInt(SMFIP_NR_EOH))
}

func milterBody(_ ctx: OpaquePointer?, _ bytes: UnsafeMutablePointer<UInt8>?, _ length: Int) -> sfsistat {
    guard let s = state(ctx) else { return sfsistat(SMFIS_CONTINUE) }
    if let bytes, length > 0 {
        s.appendBody(UnsafeBufferPointer(start: bytes, count: length))
    }
    return proceed(s, step: UInt(SMFIP_NR_BODY))
}

func milterEndOfMessage(_ ctx: OpaquePointer?) -> sfsistat {
    inFlight.add(1, ordering: .acquiringAndReleasing)
    defer { inFlight.subtract(1, ordering: .acquiringAndReleasing) }
    guard let s = state(ctx), let delegate = currentDelegate() else { return sfsistat(SMFIS_TEMPFAIL) }
    // The time the milter itself spends (decision, signing or verifying, edits); the SMTP
    // dialogue before end-of-message is the client's and the MTA's time, not ours.
    let started = ContinuousClock.now
    let body: (bytes: [UInt8], file: BodyFile?)
    do {
        body = try s.takeBody()
    } catch {
        delegate.log(.error, "message \(macro(ctx, "i") ?? "-"): \(error)")
        EditApplier.setReply(code: "451", xcode: "4.3.0",
                             text: "smime-milter: message could not be processed, try again later", ctx: ctx)
        s.resetMessage()
        return sfsistat(SMFIS_TEMPFAIL)
    }
    // takeBody let go of the connection's copy: the context holds the only one.
    var message = MessageContext(
        queueID: macro(ctx, "i"), connection: s.connection, saslLogin: s.saslLogin,
        envelopeSender: s.envelopeSender, recipients: s.recipients, fields: s.fields, body: body.bytes)
    message.bodyFile = body.file
    var outcome = (s.evaluator ?? delegate.currentEvaluator()).evaluate(message)
    switch outcome.action {
    case .accept, .quarantine:
        var failure = EditApplier.apply(outcome.edits, ctx: ctx, leadingSpace: s.keepsLeadingSpace)
        if failure == nil, case let .quarantine(reason) = outcome.action {
            failure = EditApplier.quarantine(reason: reason, ctx: ctx)
        }
        if let failure {
            outcome.decision = .error(reason: failure)
            outcome.action = .tempfail(reason: failure)
        }
    case .tempfail, .reject:
        break  // the MTA discards edits of a refused message; none are made
    }
    let result: sfsistat
    switch outcome.action {
    case .accept, .quarantine:
        result = sfsistat(SMFIS_ACCEPT)
    case .tempfail:
        EditApplier.setReply(code: "451", xcode: "4.3.0",
                             text: "smime-milter: message could not be processed, try again later", ctx: ctx)
        result = sfsistat(SMFIS_TEMPFAIL)
    case let .reject(code, xcode, text):
        EditApplier.setReply(code: code, xcode: xcode, text: text, ctx: ctx)
        result = sfsistat(SMFIS_REJECT)
    }
    let elapsed = ContinuousClock.now - started
    let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    delegate.finished(message, outcome: outcome, milliseconds: ms)
    s.resetMessage()
    return result
}

func milterAbort(_ ctx: OpaquePointer?) -> sfsistat {
    state(ctx)?.resetMessage()
    return sfsistat(SMFIS_CONTINUE)
}

func milterClose(_ ctx: OpaquePointer?) -> sfsistat {
    if let ctx, let raw = smfi_getpriv(ctx) {
        smfi_setpriv(ctx, nil)
        Unmanaged<ConnectionState>.fromOpaque(raw).release()
    }
    return sfsistat(SMFIS_CONTINUE)
}
