import MIME

/// One change to the message, in terms the milter protocol can carry out
/// (`smfi_chgheader`, `smfi_addheader`, `smfi_replacebody`).
public enum MessageEdit: Sendable, Equatable {
    /// Delete the `occurrence`-th (1-based) header field called `name` (case-insensitive),
    /// counted in the message as received. Deletions are applied from the last occurrence to
    /// the first so earlier indexes stay valid.
    case deleteField(name: String, occurrence: Int)
    /// Append a header field. `value` is the text after the colon, with its leading space.
    case addField(name: String, value: String)
    /// Replace the body (CRLF line ends).
    case replaceBody([UInt8])
}

/// What the policy decided about one message, for the log line and the metrics.
public enum Decision: Sendable, Equatable {
    /// Signed with `identity` in `form`.
    case signed(identity: String, form: SignatureForm)
    /// Left alone on purpose; `reason` says why in a few words.
    case skipped(reason: String)
    /// Not signed because the submitter may not use the From address.
    case unauthorised(reason: String)
    /// Signing failed; the configured `OnError` action applies.
    case error(reason: String)

    /// The word used in the log line and in metrics labels.
    public var keyword: String {
        switch self {
        case .signed: return "signed"
        case .skipped: return "skipped"
        case .unauthorised: return "unauthorised"
        case .error: return "error"
        }
    }
}

/// What the MTA should do with the message after the edits.
public enum MilterAction: Sendable, Equatable {
    case accept
    case tempfail(reason: String)
}

/// The result of `SigningPolicy.evaluate`: the decision, the edits that carry it out and the
/// facts the log line reports.
public struct PolicyOutcome: Sendable {
    public var decision: Decision
    public var edits: [MessageEdit]
    public var action: MilterAction
    /// The From address the decision was about, when there was exactly one.
    public var fromAddress: String?
    /// Extra facts for the log line (`key=value`), in order.
    public var details: [(String, String)]

    public init(
        decision: Decision, edits: [MessageEdit] = [], action: MilterAction = .accept,
        fromAddress: String? = nil, details: [(String, String)] = []
    ) {
        self.decision = decision
        self.edits = edits
        self.action = action
        self.fromAddress = fromAddress
        self.details = details
    }
}

/// Applies `MessageEdit`s to a message held in memory, exactly as an MTA applies the milter's
/// requests. The offline `sign` command uses it to write its output; tests use it to look at the
/// message the MTA would deliver.
public enum MessageEditor {
    public static func apply(
        _ edits: [MessageEdit], fields: [HeaderField], body: [UInt8]
    ) -> (fields: [HeaderField], body: [UInt8]) {
        var deletions = Set<Int>()
        var added: [HeaderField] = []
        var newBody = body
        for edit in edits {
            switch edit {
            case let .deleteField(name, occurrence):
                var seen = 0
                for (i, f) in fields.enumerated() where f.name.lowercased() == name.lowercased() {
                    seen += 1
                    if seen == occurrence { deletions.insert(i) }
                }
            case let .addField(name, value):
                added.append(HeaderField(name: name, value: value))
            case let .replaceBody(b):
                newBody = b
            }
        }
        var out: [HeaderField] = []
        for (i, f) in fields.enumerated() where !deletions.contains(i) { out.append(f) }
        out.append(contentsOf: added)
        return (out, newBody)
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
