import CMilter
import Policy

/// Carries out `MessageEdit`s through libmilter at end-of-message.
enum EditApplier {
    /// Returns nil on success, else what failed. On failure the caller tempfails the message,
    /// and the MTA then discards every change made so far: never half-edited mail.
    static func apply(_ edits: [MessageEdit], ctx: OpaquePointer?, leadingSpace: Bool) -> String? {
        guard let ctx else { return "no milter context" }
        // Deletions from the last occurrence to the first, so earlier indexes stay valid.
        var deletions: [(String, Int)] = []
        for case let .deleteField(name, occurrence) in edits { deletions.append((name, occurrence)) }
        deletions.sort { $0.1 > $1.1 }
        for (name, occurrence) in deletions {
            let rc = name.withCString { smfi_chgheader(ctx, UnsafeMutablePointer(mutating: $0), Int32(occurrence), nil) }
            if rc != MI_SUCCESS { return "cannot delete header field \(name)" }
        }
        for edit in edits {
            switch edit {
            case .deleteField:
                continue
            case let .addField(name, value):
                // Without SMFIP_HDR_LEADSPC the MTA adds the space after the colon itself.
                var text = leadingSpace ? value : String(value.drop(while: { $0 == " " }))
                // Folds must be bare LF for Postfix ("\r\n\t" leaves a stray CR in its queue).
                text = text.replacingOccurrences(of: "\r\n", with: "\n")
                let rc = name.withCString { n in
                    text.withCString { v in
                        smfi_addheader(ctx, UnsafeMutablePointer(mutating: n), UnsafeMutablePointer(mutating: v))
                    }
                }
                if rc != MI_SUCCESS { return "cannot add header field \(name)" }
            case let .replaceBody(body):
                var offset = 0
                // libmilter splits large bodies itself; we pass bounded pieces to stay within
                // its int length parameter.
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
                if rc != MI_SUCCESS { return "cannot replace the body" }
            }
        }
        return nil
    }
}
