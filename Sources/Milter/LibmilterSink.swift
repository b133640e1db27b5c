// SPDX-License-Identifier: Apache-2.0
import CMilter
import MIME
import Policy

/// The `EditSink` of the running milter: each request is one `smfi_*` call on the message's
/// libmilter context, at end-of-message.
struct LibmilterSink: EditSink {
    let ctx: OpaquePointer
    /// Whether `SMFIP_HDR_LEADSPC` was negotiated (values are then used byte for byte).
    let leadingSpace: Bool

    func apply(_ edit: MessageEdit) throws {
        let rc: Int32
        let what: String
        switch edit {
        case let .changeField(name, occurrence, value):
            what = "change header field \(name)"
            rc = withCStrings(name, wireValue(value)) { n, v in smfi_chgheader(ctx, n, Int32(clamping: occurrence), v) }
        case let .deleteField(name, occurrence):
            what = "delete header field \(name)"
            rc = name.withCString { smfi_chgheader(ctx, UnsafeMutablePointer(mutating: $0), Int32(clamping: occurrence), nil) }
        case let .insertField(index, name, value):
            what = "insert header field \(name)"
            rc = withCStrings(name, wireValue(value)) { n, v in smfi_insheader(ctx, Int32(clamping: index), n, v) }
        case let .addField(name, value):
            what = "add header field \(name)"
            rc = withCStrings(name, wireValue(value)) { n, v in smfi_addheader(ctx, n, v) }
        case let .replaceBody(body):
            return try replaceBody(body)
        }
        if rc != MI_SUCCESS { throw EditFailure(description: "cannot \(what)") }
    }

    func quarantine(reason: String) throws {
        // libmilter refuses an empty reason.
        let text = reason.isEmpty ? "smime-milter" : PrintableASCII.cleaned(reason, limit: 400)
        let rc = text.withCString { smfi_quarantine(ctx, UnsafeMutablePointer(mutating: $0)) }
        if rc != MI_SUCCESS { throw EditFailure(description: "cannot quarantine the message (the MTA did not allow it)") }
    }

    func setReply(_ reply: SMTPReply) {
        _ = withCStrings(reply.code, reply.xcode) { c, x in
            Self.replyText(reply.text).withCString { t in smfi_setreply(ctx, c, x, UnsafeMutablePointer(mutating: t)) }
        }
    }

    /// Reply text libmilter passes on safely: printable ASCII only (CR or LF make
    /// `smfi_setreply` fail), at most 400 characters, `%` doubled (a single one makes the MTA
    /// ignore the text).
    static func replyText(_ text: String) -> String {
        PrintableASCII.cleaned(text, limit: 400).replacingOccurrences(of: "%", with: "%%")
    }

    /// A header value as libmilter wants it. Without SMFIP_HDR_LEADSPC the MTA adds the space
    /// after the colon itself; folds must be bare LF for Postfix ("\r\n\t" leaves a stray CR in
    /// its queue).
    func wireValue(_ value: String) -> String {
        // On the bytes, not with Foundation's replacingOccurrences: this runs for every edit.
        let bytes = Array(value.utf8)
        var start = 0
        if !leadingSpace { while start < bytes.count && bytes[start] == 0x20 { start += 1 } }
        var out = [UInt8]()
        out.reserveCapacity(bytes.count - start)
        var i = start
        while i < bytes.count {
            if bytes[i] == 0x0D && i + 1 < bytes.count && bytes[i + 1] == 0x0A { i += 1; continue }
            out.append(bytes[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func withCStrings(
        _ a: String, _ b: String, _ body: (UnsafeMutablePointer<CChar>, UnsafeMutablePointer<CChar>) -> Int32
    ) -> Int32 {
        a.withCString { pa in b.withCString { pb in body(UnsafeMutablePointer(mutating: pa), UnsafeMutablePointer(mutating: pb)) } }
    }

    /// The body one piece at a time (at most 1 MiB each, within libmilter's int length): a
    /// spooled body is never in memory as a whole.
    private func replaceBody(_ body: MessageBody) throws {
        var sent = false
        var refused = false
        do {
            try body.forEachPiece { piece in
                guard !refused, let base = piece.baseAddress else { return }
                let bytes = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: UInt8.self))
                if smfi_replacebody(ctx, bytes, Int32(piece.count)) != MI_SUCCESS { refused = true }
                sent = true
            }
        } catch {
            throw EditFailure(description: "\(error)")
        }
        if !sent && !refused { refused = smfi_replacebody(ctx, nil, 0) != MI_SUCCESS }
        if refused { throw EditFailure(description: "cannot replace the body") }
    }
}
