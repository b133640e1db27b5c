// SPDX-License-Identifier: Apache-2.0
import MIME
import SMIME

/// One change to the message, in terms the milter protocol can carry out
/// (`smfi_chgheader`, `smfi_addheader`, `smfi_insheader`, `smfi_replacebody`).
public enum MessageEdit: Sendable, Equatable {
    /// Delete the `occurrence`-th (1-based) header field called `name` (case-insensitive),
    /// counted in the message as received. Deletions are applied from the last occurrence to
    /// the first so earlier indexes stay valid.
    case deleteField(name: String, occurrence: Int)
    /// Append a header field. `value` is the text after the colon, with its leading space.
    case addField(name: String, value: String)
    /// Insert a header field so that `index` (0-based) fields precede it: index 0 puts it at
    /// the top, as trace fields go (`smfi_insheader`; OpenDKIM adds Authentication-Results so).
    /// `value` as for `addField`.
    case insertField(index: Int, name: String, value: String)
    /// Replace the value of the `occurrence`-th (1-based) header field called `name`, counted in
    /// the message as received (`smfi_chgheader` with a value). `value` as for `addField`.
    case changeField(name: String, occurrence: Int, value: String)
    /// Replace the body (CRLF line ends): from memory, or piece by piece from a file (a large
    /// body signed from the spool file without loading it).
    case replaceBody(MessageBody)

    /// Replace the body with these bytes.
    public static func replaceBody(_ bytes: [UInt8]) -> MessageEdit { .replaceBody(.memory(bytes)) }
}

/// What the policy decided about one message, for the log line and the metrics.
public enum Decision: Sendable, Equatable {
    /// Signed with `identity` in `form`.
    case signed(identity: String, form: SignatureForm)
    /// Left alone on purpose; `reason` says why in a few words.
    case skipped(reason: String)
    /// Not signed because the submitter may not use the From address.
    case unauthorised(reason: String)
    /// Outbound mail whose client signature was broken on the way: the broken signature layer
    /// was removed and the message goes on unsigned, with a warning header (`OnBrokenSignature`
    /// strip, or resign when we may not sign). `reason` says whose signature and what broke it.
    case stripped(reason: String)
    /// Signing failed; the configured `OnError` action applies.
    case error(reason: String)
    /// Inbound mail whose signature was checked: the RFC 7281 result and, when it did not
    /// pass, why in plain words.
    case verified(result: SMIMEResult, reason: String?)

    /// The word used in the log line and in metrics labels.
    public var keyword: String {
        switch self {
        case .signed: return "signed"
        case .skipped: return "skipped"
        case .stripped: return "stripped"
        case .unauthorised: return "unauthorised"
        case .error: return "error"
        case .verified: return "verified"
        }
    }
}

/// An SMTP reply: the reply code, the RFC 3463 enhanced status code and one line of text.
public struct SMTPReply: Sendable, Equatable {
    /// `451`, `550`, ...
    public var code: String
    /// `4.3.0`, `5.7.1`, ...
    public var xcode: String
    /// One line of printable ASCII (the binding cleans it for the MTA).
    public var text: String

    public init(code: String, xcode: String, text: String) {
        self.code = code
        self.xcode = xcode
        self.text = text
    }
}

/// What the MTA should do with the message after the edits. Tempfail and reject carry the same
/// three things, the reply the client gets; `FailureRules` makes every tempfail.
public enum MilterAction: Sendable, Equatable {
    /// Accept the message with the edits.
    case accept
    /// Make the client retry later with this 4xx reply; the MTA discards the edits.
    case tempfail(code: String, xcode: String, text: String)
    /// Accept the message with the edits into the MTA's hold queue (`smfi_quarantine`);
    /// `reason` is recorded by the MTA (Postfix logs it as `milter-hold`).
    case quarantine(reason: String)
    /// Refuse the message with this SMTP reply (`smfi_setreply`, `SMFIS_REJECT`); the edits are
    /// not made. `code` is a 5xx reply code, `xcode` an RFC 3463 enhanced status code, `text`
    /// a single line of printable ASCII.
    case reject(code: String, xcode: String, text: String)

    /// A tempfail with `reply`.
    public static func tempfail(_ reply: SMTPReply) -> MilterAction {
        .tempfail(code: reply.code, xcode: reply.xcode, text: reply.text)
    }

    /// The SMTP reply of a tempfail or reject; nil for accept and quarantine.
    public var reply: SMTPReply? {
        switch self {
        case .accept, .quarantine: return nil
        case let .tempfail(code, xcode, text), let .reject(code, xcode, text):
            return SMTPReply(code: code, xcode: xcode, text: text)
        }
    }

    /// The word used in the log line.
    public var keyword: String {
        switch self {
        case .accept: return "accept"
        case .tempfail: return "tempfail"
        case .quarantine: return "quarantine"
        case .reject: return "reject"
        }
    }
}

/// The result of `SigningPolicy.evaluate`, `VerificationPolicy.evaluate` or
/// `MessagePolicy.evaluate`: the decision, the edits that carry it out and the
/// facts the log line reports.
public struct PolicyOutcome: Sendable {
    public var decision: Decision
    public var edits: [MessageEdit]
    public var action: MilterAction
    /// The From address the decision was about, when there was exactly one.
    public var fromAddress: String?
    /// Extra facts for the log line (`key=value`), in order.
    public var details: [(String, String)]
    /// A report to mail once the message is handled (subject to the caller's rate limit), or nil.
    public var report: ReportMail?

    public init(
        decision: Decision, edits: [MessageEdit] = [], action: MilterAction = .accept,
        fromAddress: String? = nil, details: [(String, String)] = [], report: ReportMail? = nil
    ) {
        self.decision = decision
        self.edits = edits
        self.action = action
        self.fromAddress = fromAddress
        self.details = details
        self.report = report
    }
}

/// Applies `MessageEdit`s to a message held in memory, exactly as an MTA applies the milter's
/// requests. The offline `sign` command uses it to write its output; tests use it to look at the
/// message the MTA would deliver. `mtaOrder` is the one model of the order of the requests: the
/// milter binding sends them in that order, and `apply` carries them out one by one in it.
public enum MessageEditor {
    /// The edits in the order the binding sends them and the MTA applies them: value changes
    /// (they move no field, so occurrences are still as received), deletions from the last
    /// occurrence to the first (earlier occurrences keep their numbers), insertions in the
    /// order given, additions, the body.
    public static func mtaOrder(_ edits: [MessageEdit]) -> [MessageEdit] {
        var changes: [MessageEdit] = [], deletions: [(Int, MessageEdit)] = []
        var insertions: [MessageEdit] = [], additions: [MessageEdit] = [], bodies: [MessageEdit] = []
        for edit in edits {
            switch edit {
            case .changeField: changes.append(edit)
            case let .deleteField(_, occurrence): deletions.append((occurrence, edit))
            case .insertField: insertions.append(edit)
            case .addField: additions.append(edit)
            case .replaceBody: bodies.append(edit)
            }
        }
        // Stable: deletions of the same occurrence number keep their order.
        let lastFirst = deletions.enumerated().sorted { a, b in
            a.element.0 != b.element.0 ? a.element.0 > b.element.0 : a.offset < b.offset
        }.map(\.element.1)
        return changes + lastFirst + insertions + additions + bodies
    }

    /// Carries out `edits` the way the MTA does, one request at a time in `mtaOrder`: a change
    /// or deletion refers to the `occurrence`-th field of its name (case-insensitive) in the
    /// header as it stands; an insertion goes at its index (clamped to the end); an addition
    /// at the end; a body replacement replaces the body. Throws when a replacement body in a
    /// file cannot be read.
    public static func apply(
        _ edits: [MessageEdit], fields: [HeaderField], body: MessageBody
    ) throws -> (fields: [HeaderField], body: [UInt8]) {
        var out = fields
        var newBody: MessageBody = body
        func position(of name: String, occurrence: Int) -> Int? {
            var seen = 0
            for (i, f) in out.enumerated() where f.name.lowercased() == name.lowercased() {
                seen += 1
                if seen == occurrence { return i }
            }
            return nil
        }
        for edit in mtaOrder(edits) {
            switch edit {
            case let .changeField(name, occurrence, value):
                if let i = position(of: name, occurrence: occurrence) { out[i] = HeaderField(name: out[i].name, value: value) }
            case let .deleteField(name, occurrence):
                if let i = position(of: name, occurrence: occurrence) { out.remove(at: i) }
            case let .insertField(index, name, value):
                out.insert(HeaderField(name: name, value: value), at: min(max(index, 0), out.count))
            case let .addField(name, value):
                out.append(HeaderField(name: name, value: value))
            case let .replaceBody(replacement):
                newBody = replacement
            }
        }
        return (out, try newBody.bytes())
    }

    /// `apply` for a body in memory.
    public static func apply(
        _ edits: [MessageEdit], fields: [HeaderField], body: [UInt8]
    ) throws -> (fields: [HeaderField], body: [UInt8]) {
        try apply(edits, fields: fields, body: .memory(body))
    }

    /// Serialises header fields and body as a message with CRLF line ends. Folds inside values
    /// (bare LF from the MTA) become CRLF.
    public static func serialise(fields: [HeaderField], body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count + fields.count * 64)
        for f in fields {
            out.append(contentsOf: Array(f.name.utf8))
            out.append(UInt8(ascii: ":"))
            var previous: UInt8 = 0
            for b in f.value.utf8 {
                if b == 0x0A && previous != 0x0D { out.append(0x0D) }
                out.append(b)
                previous = b
            }
            out.append(contentsOf: [0x0D, 0x0A])
        }
        out.append(contentsOf: [0x0D, 0x0A])
        out.append(contentsOf: body)
        return out
    }
}
