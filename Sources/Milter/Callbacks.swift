// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CMilter
import MIME
import Policy

// The libmilter callbacks: each reads libmilter's arguments and macros and forwards to the
// connection's `MilterSession`, which holds the logic (and is tested without libmilter). They
// are named global functions on purpose: closures written in top-level code would be inferred
// @MainActor and crash when libmilter calls them on its worker threads (see docs/ARCHITECTURE.md).

private func session(_ ctx: OpaquePointer?) -> MilterSession? {
    guard let ctx, let raw = smfi_getpriv(ctx) else { return nil }
    return Unmanaged<MilterSession>.fromOpaque(raw).takeUnretainedValue()
}

/// The session of this connection, created on first use: `close` and `abort` can arrive
/// without `connect`, and with SMFIP_NOCONNECT there is none.
private func sessionCreating(_ ctx: OpaquePointer?) -> MilterSession? {
    if let s = session(ctx) { return s }
    guard let ctx else { return nil }
    let s = MilterSession(delegate: currentDelegate())
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
private func proceed(_ s: MilterSession?, step: UInt) -> sfsistat {
    if let s, s.noReplySteps & step != 0 { return sfsistat(SMFIS_NOREPLY) }
    return sfsistat(SMFIS_CONTINUE)
}

private func firstArgument(_ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> String? {
    guard let argv, let first = argv.pointee else { return nil }
    return String(cString: first)
}

private func cBytes(_ pointer: UnsafeMutablePointer<CChar>) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)).bindMemory(to: UInt8.self))
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
    if let s = sessionCreating(ctx) {
        s.keepsLeadingSpace = agreed & UInt(SMFIP_HDR_LEADSPC) != 0
        s.noReplySteps = agreed & noReply
    }
    if let ctx {
        IdleWatchdog.shared.watch(ctx)
        IdleWatchdog.shared.activity(ctx, busy: false)
    }
    return sfsistat(SMFIS_CONTINUE)
}

func milterConnect(
    _ ctx: OpaquePointer?, _ hostname: UnsafeMutablePointer<CChar>?, _ hostaddr: UnsafeMutablePointer<sockaddr>?
) -> sfsistat {
    IdleWatchdog.shared.activity(ctx, busy: true)
    defer { IdleWatchdog.shared.activity(ctx, busy: false) }
    guard let s = sessionCreating(ctx) else { return sfsistat(SMFIS_TEMPFAIL) }
    let (address, port) = SocketAddress.describe(hostaddr)
    let answer = s.connect(hostname: hostname.map { String(cString: $0) }, address: address, port: port,
                           hasAddress: hostaddr != nil)
    // libmilter sends no custom reply at connect (smfi_setreply is not allowed there): the MTA
    // gives its own 4xx for the tempfail.
    if case .tempfail = answer { return sfsistat(SMFIS_TEMPFAIL) }
    return proceed(s, step: UInt(SMFIP_NR_CONN))
}

func milterEnvFrom(_ ctx: OpaquePointer?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> sfsistat {
    IdleWatchdog.shared.activity(ctx, busy: true)
    defer { IdleWatchdog.shared.activity(ctx, busy: false) }
    guard let s = sessionCreating(ctx) else { return sfsistat(SMFIS_TEMPFAIL) }
    s.envelopeFrom(sender: firstArgument(argv), saslLogin: macro(ctx, "{auth_authen}"))
    return proceed(s, step: UInt(SMFIP_NR_MAIL))
}

func milterEnvRcpt(_ ctx: OpaquePointer?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> sfsistat {
    IdleWatchdog.shared.activity(ctx, busy: true)
    defer { IdleWatchdog.shared.activity(ctx, busy: false) }
    let s = session(ctx)
    if let ctx, let s, let recipient = firstArgument(argv) {
        switch s.envelopeRecipient(recipient, sink: LibmilterSink(ctx: ctx, leadingSpace: s.keepsLeadingSpace)) {
        case .accept, .quarantine: break
        case .tempfail: return sfsistat(SMFIS_TEMPFAIL)
        case .reject: return sfsistat(SMFIS_REJECT)
        }
    }
    return proceed(s, step: UInt(SMFIP_NR_RCPT))
}

func milterHeader(
    _ ctx: OpaquePointer?, _ name: UnsafeMutablePointer<CChar>?, _ value: UnsafeMutablePointer<CChar>?
) -> sfsistat {
    IdleWatchdog.shared.activity(ctx, busy: true)
    defer { IdleWatchdog.shared.activity(ctx, busy: false) }
    guard let s = session(ctx) else { return sfsistat(SMFIS_CONTINUE) }
    if let name, let value { s.header(name: cBytes(name), value: cBytes(value)) }
    return proceed(s, step: UInt(SMFIP_NR_HDR))
}

func milterEndOfHeaders(_ ctx: OpaquePointer?) -> sfsistat {
    IdleWatchdog.shared.activity(ctx, busy: true)
    defer { IdleWatchdog.shared.activity(ctx, busy: false) }
    return proceed(session(ctx), step: UInt(SMFIP_NR_EOH))
}

func milterBody(_ ctx: OpaquePointer?, _ bytes: UnsafeMutablePointer<UInt8>?, _ length: Int) -> sfsistat {
    IdleWatchdog.shared.activity(ctx, busy: true)
    defer { IdleWatchdog.shared.activity(ctx, busy: false) }
    guard let s = session(ctx) else { return sfsistat(SMFIS_CONTINUE) }
    if let bytes, length > 0 { s.appendBody(UnsafeBufferPointer(start: bytes, count: length)) }
    return proceed(s, step: UInt(SMFIP_NR_BODY))
}

func milterEndOfMessage(_ ctx: OpaquePointer?) -> sfsistat {
    IdleWatchdog.shared.activity(ctx, busy: true)
    defer { IdleWatchdog.shared.activity(ctx, busy: false) }
    guard let ctx, let s = session(ctx) else { return sfsistat(SMFIS_TEMPFAIL) }
    let action = s.endOfMessage(queueID: macro(ctx, "i"), sink: LibmilterSink(ctx: ctx, leadingSpace: s.keepsLeadingSpace))
    switch action {
    case .accept, .quarantine: return sfsistat(SMFIS_ACCEPT)
    case .tempfail: return sfsistat(SMFIS_TEMPFAIL)
    case .reject: return sfsistat(SMFIS_REJECT)
    }
}

func milterAbort(_ ctx: OpaquePointer?) -> sfsistat {
    IdleWatchdog.shared.activity(ctx, busy: true)
    defer { IdleWatchdog.shared.activity(ctx, busy: false) }
    session(ctx)?.abort()
    return sfsistat(SMFIS_CONTINUE)
}

func milterClose(_ ctx: OpaquePointer?) -> sfsistat {
    IdleWatchdog.shared.forget(ctx)
    if let ctx, let raw = smfi_getpriv(ctx) {
        smfi_setpriv(ctx, nil)
        Unmanaged<MilterSession>.fromOpaque(raw).release()
    }
    return sfsistat(SMFIS_CONTINUE)
}
