// SPDX-License-Identifier: Apache-2.0
/// Where the two parts of a multipart/signed body lie, found without holding the body: what
/// verifying a large spooled message from its file needs (part 1 is hashed from the file, part 2,
/// the small signature, is read into memory).
public struct SignedBodyLayout: Sendable, Equatable {
    /// Part 1 exactly as `MIMEParser` delimits it: the bytes a detached signature covers
    /// (RFC 1847 §2.1), from after the first delimiter line to before the line end that precedes
    /// the second delimiter. Every line end in it is CRLF (the scan says `irregular` otherwise).
    public var signedRange: Range<Int>
    /// Part 2 (header and body), up to the line end before the close-delimiter, or to the end of
    /// the body when the close-delimiter is missing (as `MIMEParser` tolerates).
    public var signatureRange: Range<Int>
    /// False when the close-delimiter is missing.
    public var isTerminated: Bool

    public init(signedRange: Range<Int>, signatureRange: Range<Int>, isTerminated: Bool) {
        self.signedRange = signedRange
        self.signatureRange = signatureRange
        self.isTerminated = isTerminated
    }
}

/// Finds the delimiters of a multipart body in one streaming pass, by exactly the rules of
/// `MIMEParser` (RFC 2046 §5.1.1: `--boundary` at the start of a line, optional transport padding,
/// the line end before it belonging to the delimiter, the first close-delimiter ending the
/// search), and returns the layout of a two-part multipart/signed body.
///
/// Conservative: anything the streaming verification could get wrong is `irregular` (the caller
/// then uses the in-memory parser, which decides): not exactly two parts, a bare CR or LF inside
/// part 1 (the in-memory path canonicalises part 1 to CRLF before hashing; a file range can only
/// be hashed as it is), a line that starts with the delimiter and runs on for more than 1024
/// bytes, a signature part over the caller's cap.
public struct SignedBodyScanner: Sendable {
    /// What the scan found.
    public enum Outcome: Sendable, Equatable {
        /// A regular two-part body.
        case layout(SignedBodyLayout)
        /// The body is not one the streaming path handles; the reason, for the log.
        case irregular(String)
    }

    private struct Delimiter {
        var span: Range<Int>
        var isClose: Bool
    }

    private let dash: [UInt8]
    private let maxSignaturePart: Int
    /// Longest tail after `--boundary` kept for a candidate delimiter line (padding included).
    private static let maxCandidateTail = 1024

    private var delimiters: [Delimiter] = []
    private var stopped: String?
    private var closed = false
    /// Absolute offset of the next byte fed.
    private var position = 0
    private var lineStart = 0
    /// The end of the last delimiter found (a line end used by one cannot open the next).
    private var previousEnd = 0
    /// The line end before `lineStart` was CRLF (the CR may belong to the next delimiter's span).
    private var lineEndBeforeWasCRLF = false
    private var previous: UInt8 = 0
    /// The current line's bytes while it may still be a delimiter line.
    private var candidate: [UInt8] = []
    private var isCandidate = true
    /// Line ends are checked from here (the start of part 1) until part 1 is delimited.
    private var watchFrom: Int?
    private var firstBareLineEnd: Int?
    /// Where part 2 starts, once the second delimiter is found.
    private var signatureStart: Int?

    /// - Parameters:
    ///   - boundary: the `boundary` parameter of the top-level Content-Type (not empty).
    ///   - maxSignaturePart: the largest part 2 (header and body) accepted; a larger one is
    ///     `irregular`, so the scan stops there and nothing larger is ever read into memory.
    public init(boundary: String, maxSignaturePart: Int) {
        dash = Array(("--" + boundary).utf8)
        self.maxSignaturePart = max(0, maxSignaturePart)
        candidate.reserveCapacity(dash.count + 16)
    }

    /// Scans a plain spool file (`BodyFile.isPlain`) piece by piece.
    public static func scan(_ file: BodyFile, boundary: String, maxSignaturePart: Int) throws -> Outcome {
        guard file.isPlain else { return .irregular("the body is a converted view, not the spool file itself") }
        var scanner = SignedBodyScanner(boundary: boundary, maxSignaturePart: maxSignaturePart)
        struct Done: Error {}
        do {
            try file.forEachPiece(pieceSize: 1 << 20) { piece in
                scanner.feed(piece)
                if scanner.isFinished { throw Done() }   // nothing after the close-delimiter matters
            }
        } catch is Done {}
        return scanner.finish()
    }

    /// Whether the rest of the body can no longer change the outcome.
    public var isFinished: Bool { closed || stopped != nil }

    /// Feeds the next piece of the body.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard !isFinished, bytes.count > 0 else { return }
        let b = bytes.bindMemory(to: UInt8.self)
        var i = 0
        while i < b.count {
            let byte = b[i]
            let p = position + i
            if let from = watchFrom, firstBareLineEnd == nil {
                if byte == Byte.lf, previous != Byte.cr, p >= from { firstBareLineEnd = p }
                if previous == Byte.cr, byte != Byte.lf, p - 1 >= from { firstBareLineEnd = p - 1 }
            }
            if byte == Byte.lf {
                endLine(contentEnd: p, next: p + 1)
                lineEndBeforeWasCRLF = previous == Byte.cr
                previous = byte
                if isFinished { position += i + 1; return }
                lineStart = p + 1
                candidate.removeAll(keepingCapacity: true)
                isCandidate = true
            } else {
                if isCandidate {
                    if candidate.count < dash.count {
                        if byte == dash[candidate.count] { candidate.append(byte) } else { isCandidate = false }
                    } else if candidate.count < dash.count + Self.maxCandidateTail {
                        candidate.append(byte)
                    } else {
                        stopped = "a line starting with the delimiter is over \(Self.maxCandidateTail) bytes longer than it"
                        return
                    }
                }
                previous = byte
            }
            // The close-delimiter line is read before it is known to be one: allow for it here;
            // `finish` checks the exact size.
            if let start = signatureStart, p + 1 - start > maxSignaturePart + dash.count + Self.maxCandidateTail + 4 {
                stopped = "the signature part is over \(maxSignaturePart) bytes"
                return
            }
            i += 1
        }
        position += b.count
    }

    /// Ends the body (a last line without a line end is a line too) and says what was found.
    public mutating func finish() -> Outcome {
        if !isFinished, lineStart < position {
            endLine(contentEnd: position, next: position)
        }
        if let from = watchFrom, firstBareLineEnd == nil, previous == Byte.cr, position - 1 >= from {
            firstBareLineEnd = position - 1   // a CR ending the body
        }
        if let stopped { return .irregular(stopped) }
        guard delimiters.count >= 2 else {
            return .irregular(delimiters.isEmpty ? "the boundary does not occur" : "multipart/signed has 1 part")
        }
        let first = delimiters[0], second = delimiters[1]
        guard !second.isClose else { return .irregular("multipart/signed has 1 part") }
        if delimiters.count > 2, !delimiters[2].isClose { return .irregular("multipart/signed has more than 2 parts") }
        let signed = first.span.upperBound..<second.span.lowerBound
        if let bare = firstBareLineEnd, bare < signed.upperBound {
            return .irregular("part 1 has a line end that is not CRLF")
        }
        let end = delimiters.count > 2 ? delimiters[2].span.lowerBound : position
        let signature = second.span.upperBound..<max(second.span.upperBound, end)
        guard signature.count <= maxSignaturePart else { return .irregular("the signature part is over \(maxSignaturePart) bytes") }
        return .layout(SignedBodyLayout(signedRange: signed, signatureRange: signature, isTerminated: delimiters.count > 2))
    }

    /// One line has ended: its content is `lineStart..<contentEnd` (the LF excluded), the next
    /// line starts at `next`. Mirrors `MIMEParser.findDelimiters`.
    private mutating func endLine(contentEnd: Int, next: Int) {
        guard isCandidate, candidate.count >= dash.count else { return }
        var i = dash.count
        var isClose = false
        let n = candidate.count
        if i + 1 < n, candidate[i] == Byte.dash, candidate[i + 1] == Byte.dash {
            isClose = true
            i += 2
        }
        // Only transport padding (and the CR of CRLF) may follow.
        while i < n && (Byte.isWSP(candidate[i]) || (candidate[i] == Byte.cr && i == n - 1)) { i += 1 }
        guard i == n else { return }
        var spanStart = lineStart
        if lineStart > previousEnd {
            spanStart = lineStart - 1   // the LF ending the previous line
            if spanStart > previousEnd && lineEndBeforeWasCRLF { spanStart -= 1 }
        }
        delimiters.append(Delimiter(span: spanStart..<next, isClose: isClose))
        previousEnd = next
        if isClose {
            closed = true
            return
        }
        switch delimiters.count {
        case 1:
            watchFrom = next
        case 2:
            // Part 1 is delimited: a bare line end at or after its end does not matter.
            if let bare = firstBareLineEnd, bare < spanStart {
                stopped = "part 1 has a line end that is not CRLF"
            }
            watchFrom = nil
            signatureStart = next
        default:
            stopped = "multipart/signed has more than 2 parts"
        }
    }
}
