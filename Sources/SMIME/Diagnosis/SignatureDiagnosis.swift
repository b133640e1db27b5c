// SPDX-License-Identifier: Apache-2.0
/// What broke a multipart/signed signature, as found by `SignatureDiagnoser`.
///
/// The signed messageDigest attribute is the oracle: a reconstruction of the original signed bytes
/// whose digest equals it is proof of what changed (`confirmed`). Without such a match the cause is
/// what the evidence suggests (`likely`) or `unknown`.
public struct SignatureDiagnosis: Sendable, Equatable, CustomStringConvertible {
    /// How sure the diagnosis is.
    public enum Confidence: String, Sendable, Equatable {
        /// A reconstruction of the original bytes matched the signed messageDigest.
        case confirmed
        /// No reconstruction matched, but the content shows the traces of this cause.
        case likely
        /// Nothing points to a cause (or the work budget ran out first).
        case unknown
    }

    /// The cause (the first of `causes`).
    public var cause: DiagnosisCause
    /// Every cause the confirmed reconstruction undid: one, or two when two intermediaries (or
    /// one tool doing two things) changed the content, in the order they are named.
    public var causes: [DiagnosisCause]
    /// The media type of the part the second cause was found in, or nil.
    public var secondMediaType: String?
    /// How sure.
    public var confidence: Confidence
    /// What was found, in plain words (longer than `description`; for logs and `diagnose`).
    public var detail: String
    /// The first line with words of a found footer or inserted text (decoded, tags removed, at
    /// most 200 characters), or nil.
    public var footer: String?
    /// The media type of the part the change was found in (`text/plain`), or nil.
    public var mediaType: String?
    /// How many digests were computed (candidate reconstructions × digest algorithms).
    public var digestComputations: Int

    public init(cause: DiagnosisCause, confidence: Confidence, detail: String, footer: String? = nil,
                mediaType: String? = nil, digestComputations: Int = 0,
                also second: DiagnosisCause? = nil, secondMediaType: String? = nil) {
        self.cause = cause
        self.causes = second.map { [cause, $0] } ?? [cause]
        self.secondMediaType = secondMediaType
        self.confidence = confidence
        self.detail = detail
        self.footer = footer
        self.mediaType = mediaType
        self.digestComputations = digestComputations
    }

    /// One short line: "footer appended to text/plain part (confirmed)", "cause unknown";
    /// two causes are joined with "and".
    public var description: String {
        guard !(confidence == .unknown && cause == .unknown) else { return "cause unknown" }
        var text = cause.summary(mediaType: mediaType)
        if causes.count > 1 { text += " and " + causes[1].summary(mediaType: secondMediaType) }
        return "\(text) (\(confidence.rawValue))"
    }
}

/// The transformations a signed entity suffers in transit (STANDARDS.md §5).
public enum DiagnosisCause: Sendable, Equatable {
    /// Was a blank line removed before a boundary, or added?
    public enum BlankLineChange: String, Sendable, Equatable { case removed, added }
    /// Which transfer-encoding change.
    public enum EncodingChange: String, Sendable, Equatable {
        /// An 8bit part was converted to quoted-printable (Postfix, Sendmail, reformime).
        case eightBitToQuotedPrintable
        /// Quoted-printable was decoded and encoded again with other soft line breaks.
        case quotedPrintableReencoded
        /// Base64 was re-wrapped at another line length.
        case base64Rewrapped
    }
    /// How the signed entity's header fields changed.
    public enum HeaderChange: String, Sendable, Equatable { case refolded, changed }

    /// CRLF and LF differ between what was signed and what arrived (including a signer that
    /// hashed LF line ends without canonicalising).
    case lineEndsChanged
    /// Trailing white space was stripped from lines (e.g. the `-- ` signature separator).
    case trailingWhitespaceStripped
    /// A blank line before a boundary (the end of the signed part) was removed or added.
    case blankLineBeforeBoundary(BlankLineChange)
    /// MIME boundary lines were rewritten.
    case boundaryRewritten
    /// The content transfer encoding was changed.
    case transferEncodingChanged(EncodingChange)
    /// Text (a footer or disclaimer) was appended to a text part.
    case textAppended
    /// HTML was inserted before `</body>` of an HTML part.
    case htmlInserted
    /// A part was appended to the signed multipart.
    case partAppended
    /// Header fields of the signed entity were refolded or changed.
    case headersChanged(HeaderChange)
    /// A line starting `From ` was escaped to `>From ` (mbox).
    case fromEscaped
    /// Not known.
    case unknown

    /// A short stable name, for metrics labels and log fields (`line_ends`, `footer`, ...).
    public var label: String {
        switch self {
        case .lineEndsChanged: return "line_ends"
        case .trailingWhitespaceStripped: return "trailing_whitespace"
        case .blankLineBeforeBoundary: return "blank_line_before_boundary"
        case .boundaryRewritten: return "boundary_rewritten"
        case .transferEncodingChanged(.eightBitToQuotedPrintable): return "8bit_to_qp"
        case .transferEncodingChanged(.quotedPrintableReencoded): return "qp_reencoded"
        case .transferEncodingChanged(.base64Rewrapped): return "base64_rewrapped"
        case .textAppended: return "footer"
        case .htmlInserted: return "html_inserted"
        case .partAppended: return "part_appended"
        case .headersChanged: return "headers_changed"
        case .fromEscaped: return "from_escaped"
        case .unknown: return "unknown"
        }
    }

    /// The cause in a few words, naming the part's media type where one is known.
    public func summary(mediaType: String? = nil) -> String {
        switch self {
        case .lineEndsChanged: return "line ends changed between CRLF and LF"
        case .trailingWhitespaceStripped: return "trailing white space stripped"
        case .blankLineBeforeBoundary(.removed): return "blank line before a boundary removed"
        case .blankLineBeforeBoundary(.added): return "blank line added before a boundary"
        case .boundaryRewritten: return "MIME boundaries rewritten"
        case .transferEncodingChanged(.eightBitToQuotedPrintable):
            return "8bit \(mediaType ?? "") part converted to quoted-printable".replacingOccurrences(of: "  ", with: " ")
        case .transferEncodingChanged(.quotedPrintableReencoded): return "quoted-printable re-encoded"
        case .transferEncodingChanged(.base64Rewrapped): return "base64 re-wrapped at another line length"
        case .textAppended:
            let media = mediaType ?? "text"
            if media.hasPrefix("the ") { return "text added to \(media)" }
            return "footer appended to \(media) part" + (media.contains(" and ") ? "s" : "")
        case .htmlInserted: return "HTML inserted before </body> of \(mediaType ?? "text/html") part"
        case .partAppended: return "part appended to the signed multipart"
        case .headersChanged(.refolded): return "header fields of the signed part refolded"
        case .headersChanged(.changed): return "header fields of the signed part changed"
        case .fromEscaped: return "\"From \" escaped to \">From \""
        case .unknown: return "cause unknown"
        }
    }
}

/// Bounds for the diagnosis of one message, so hostile mail cannot make it expensive.
public struct DiagnosisOptions: Sendable, Equatable {
    /// Diagnose digest mismatches at all (on by default).
    public var enabled: Bool
    /// At most this many digest computations (candidates × digest algorithms) per message.
    public var maxDigestComputations: Int
    /// At most this much time per message (measured with `ContinuousClock`, checked between
    /// candidates and every megabyte of hashing).
    public var timeBudget: Duration
    /// How many line boundaries at the end of a text part are tried as the start of a footer.
    public var maxFooterLines: Int
    /// At most this many leaves of each kind (quoted-printable, base64) get their own candidates.
    public var maxLeaves: Int

    public init(enabled: Bool = true, maxDigestComputations: Int = 96, timeBudget: Duration = .milliseconds(200),
                maxFooterLines: Int = 24, maxLeaves: Int = 4) {
        self.enabled = enabled
        self.maxDigestComputations = max(0, maxDigestComputations)
        self.timeBudget = timeBudget
        self.maxFooterLines = max(0, maxFooterLines)
        self.maxLeaves = max(0, maxLeaves)
    }
}
