// SPDX-License-Identifier: Apache-2.0
import CMilter
import Policy

/// Carries out `MessageEdit`s and the quarantine request through libmilter at end-of-message,
/// in the order `MessageEditor.apply` models: value changes, deletions (last occurrence
/// first), insertions in the order given, additions, the body.
enum EditApplier {
    /// Returns nil on success, else what failed. On failure the caller tempfails the message,
    /// and the MTA then discards every change made so far: never half-edited mail.
    static func apply(_ edits: [MessageEdit], ctx: OpaquePointer?, leadingSpace: Bool) -> String? {
        guard let ctx else { return "no milter context" }
        // Changes do not move fields, so they go first while occurrences are as received.
        for case let .changeField(name, occurrence, value) in edits {
            let rc = withCStrings(name, wireValue(value, leadingSpace: leadingSpace)) { n, v in
                smfi_chgheader(ctx, n, Int32(clamping: occurrence), v)
            }
            if rc != MI_SUCCESS { return "cannot change header field \(name)" }
        }
        // Deletions from the last occurrence to the first, so earlier indexes stay valid.
        var deletions: [(String, Int)] = []
        for case let .deleteField(name, occurrence) in edits { deletions.append((name, occurrence)) }
        deletions.sort { $0.1 > $1.1 }
        for (name, occurrence) in deletions {
            let rc = name.withCString { smfi_chgheader(ctx, UnsafeMutablePointer(mutating: $0), Int32(clamping: occurrence), nil) }
            if rc != MI_SUCCESS { return "cannot delete header field \(name)" }
        }
        for case let .insertField(index, name, value) in edits {
            let rc = withCStrings(name, wireValue(value, leadingSpace: leadingSpace)) { n, v in
                smfi_insheader(ctx, Int32(clamping: index), n, v)
            }
            if rc != MI_SUCCESS { return "cannot insert header field \(name)" }
        }
        for case let .addField(name, value) in edits {
            let rc = withCStrings(name, wireValue(value, leadingSpace: leadingSpace)) { n, v in
                smfi_addheader(ctx, n, v)
            }
            if rc != MI_SUCCESS { return "cannot add header field \(name)" }
        }
        for case let .replaceBody(body) in edits {
            if let failure = replaceBody(body, ctx: ctx) { return failure }
        }
        for case let .replaceBodyFromFile(head, file, tail) in edits {
            if let failure = replaceBody(head: head, file: file, tail: tail, ctx: ctx) { return failure }
        }
        return nil
    }

    /// Asks the MTA to put the message in its hold queue (`smfi_quarantine`).
    static func quarantine(reason: String, ctx: OpaquePointer?) -> String? {
        guard let ctx else { return "no milter context" }
        // libmilter refuses an empty reason.
        let text = reason.isEmpty ? "smime-milter" : printable(reason)
        let rc = text.withCString { smfi_quarantine(ctx, UnsafeMutablePointer(mutating: $0)) }
        return rc == MI_SUCCESS ? nil : "cannot quarantine the message (the MTA did not allow it)"
    }

    /// Sets the SMTP reply for a reject or tempfail.
    static func setReply(code: String, xcode: String, text: String, ctx: OpaquePointer?) {
        guard let ctx else { return }
        _ = withCStrings(code, xcode) { c, x in
            replyText(text).withCString { t in smfi_setreply(ctx, c, x, UnsafeMutablePointer(mutating: t)) }
        }
    }

    /// Reply text libmilter passes on safely: printable ASCII only (CR or LF make
    /// `smfi_setreply` fail), `%` doubled (a single one makes the MTA ignore the text).
    static func replyText(_ text: String) -> String {
        printable(text).replacingOccurrences(of: "%", with: "%%")
    }

    /// `text` as printable ASCII (anything else becomes a space), at most 400 characters.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(400).map { (" "..."~").contains($0) ? $0 : " " }))
    }

    /// A header value as libmilter wants it. Without SMFIP_HDR_LEADSPC the MTA adds the space
    /// after the colon itself; folds must be bare LF for Postfix ("\r\n\t" leaves a stray CR in
    /// its queue).
    static func wireValue(_ value: String, leadingSpace: Bool) -> String {
        let text = leadingSpace ? value : String(value.drop(while: { $0 == " " }))
        return text.replacingOccurrences(of: "\r\n", with: "\n")
    }

    private static func withCStrings(
        _ a: String, _ b: String, _ body: (UnsafeMutablePointer<CChar>, UnsafeMutablePointer<CChar>) -> Int32
    ) -> Int32 {
        a.withCString { pa in b.withCString { pb in body(UnsafeMutablePointer(mutating: pa), UnsafeMutablePointer(mutating: pb)) } }
    }

    /// The body from `head`, the spooled file and `tail`, one piece at a time: a large body is
    /// never in memory as a whole.
    private static func replaceBody(head: [UInt8], file: BodyFile, tail: [UInt8], ctx: OpaquePointer) -> String? {
        if !head.isEmpty, let failure = replaceBody(head, ctx: ctx) { return failure }
        var failure: String?
        do {
            try file.forEachPiece { piece in
                guard failure == nil, let base = piece.baseAddress else { return }
                let bytes = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: UInt8.self))
                if smfi_replacebody(ctx, bytes, Int32(piece.count)) != MI_SUCCESS { failure = "cannot replace the body" }
            }
        } catch {
            return "\(error)"
        }
        if let failure { return failure }
        if !tail.isEmpty, let failure = replaceBody(tail, ctx: ctx) { return failure }
        return nil
    }

    private static func replaceBody(_ body: [UInt8], ctx: OpaquePointer) -> String? {
        var offset = 0
        // libmilter splits large bodies itself; we pass bounded pieces to stay within its int
        // length parameter.
        let piece = 1 << 20
        var rc = MI_SUCCESS
        body.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            while offset < buffer.count && rc == MI_SUCCESS {
                let n = min(piece, buffer.count - offset)
                rc = smfi_replacebody(ctx, UnsafeMutablePointer(mutating: base + offset), Int32(n))
                offset += n
            }
        }
        if body.isEmpty { rc = smfi_replacebody(ctx, nil, 0) }
        return rc == MI_SUCCESS ? nil : "cannot replace the body"
    }
}
