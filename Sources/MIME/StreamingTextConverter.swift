// SPDX-License-Identifier: Apache-2.0
/// Makes the signable entity of a single-part text message piece by piece, for a body too large
/// to hold in memory (a spooled body with 8-bit text, long lines, bare line ends, `From ` lines
/// or trailing white space, which `VerbatimBodyScanner` turns away).
///
/// The result is byte for byte what `SignableEntity.make` gives for the whole body: the header
/// comes from `SignableEntity.make` itself (over a small body with the same facts), and the body
/// is converted a run of whole lines at a time, which is exact because every step of the
/// conversion of a text leaf is line-local: CRLF completion, the facts (`LineFacts`), the charset
/// (UTF-8 validity cannot straddle an LF) and quoted-printable (`isText`: each hard line break
/// resets the column).
///
/// Two passes over the body, each through its own `LineRuns`: `scan` every run, then
/// `header()`, then `convert` every run. When pass 1's `LineRuns` had to cut a line
/// (`cutALine`), the message is for the in-memory path: quoted-printable's soft breaks depend on
/// the whole line. Only the top level may be a text leaf in 7bit, 8bit or binary (or without
/// Content-Type); anything else is for the in-memory path too (`init` gives nil).
public struct StreamingTextConverter: Sendable {
    private let fields: [HeaderField]
    private var facts = LineFacts([UInt8]())
    private var hasEightBit = false
    private var validUTF8 = true

    /// Nil unless the top level is a single text part whose body is not transfer-encoded.
    public init?(fields: [HeaderField], limits: MIMELimits = MIMELimits()) {
        guard let top = try? MIMEParser.parse(fields: fields, body: [], limits: limits),
              case .leaf = top.content, top.contentType.isText, top.transferEncoding.isIdentity
        else { return nil }
        self.fields = fields
    }

    /// Pass 1: one run of whole lines (as `LineRuns` hands them out).
    public mutating func scan(_ run: UnsafeRawBufferPointer) {
        let canonical = LineEnds.toCRLF(run)
        let runFacts = LineFacts(canonical)
        facts.hasEightBitOrNUL = facts.hasEightBitOrNUL || runFacts.hasEightBitOrNUL
        facts.hasLongLine = facts.hasLongLine || runFacts.hasLongLine
        facts.hasFromLine = facts.hasFromLine || runFacts.hasFromLine
        facts.hasTrailingWhitespace = facts.hasTrailingWhitespace || runFacts.hasTrailingWhitespace
        facts.hasBareLineBreak = facts.hasBareLineBreak || runFacts.hasBareLineBreak
        if canonical.contains(where: { $0 >= 0x80 }) {
            hasEightBit = true
            if validUTF8 && String(validating: canonical, as: UTF8.self) == nil { validUTF8 = false }
        }
    }

    /// After pass 1: the entity's Content-* fields and the blank line, as `SignableEntity.make`
    /// writes them for this body (transfer encoding, and a charset where none is stated).
    public func header() throws -> [UInt8] {
        // A one-line body with the same facts yields the same header edits.
        var sample: [UInt8]
        switch (hasEightBit, validUTF8) {
        case (false, _): sample = Array("x".utf8)
        case (true, true): sample = [0xC3, 0xA9]        // "é" in UTF-8
        case (true, false): sample = [0xE9]             // not UTF-8: unknown-8bit
        }
        if !facts.isSafeSevenBit { sample += [Byte.space] }   // trailing white space: not safe
        sample += Byte.crlf
        let entity = try SignableEntity.make(fields: fields, body: sample).bytes
        guard let end = entity.firstRange(of: [Byte.cr, Byte.lf, Byte.cr, Byte.lf]) else {
            throw MIMEError.cannotMake7Bit(section: "1", reason: "the entity has no header end")
        }
        return Array(entity[..<end.upperBound])
    }

    /// Pass 2: the converted form of one run of whole lines.
    public func convert(_ run: UnsafeRawBufferPointer) -> [UInt8] {
        let canonical = LineEnds.toCRLF(run)
        return facts.isSafeSevenBit ? canonical : QuotedPrintable.encode(canonical, isText: true)
    }
}

/// Cuts a stream of pieces into runs that end just after an LF (the last run may end without
/// one), so that each run holds whole lines. At most `maximumLine` bytes of an unfinished line
/// are carried (plus the rest of the piece that ends the line); past that the line goes out in
/// pieces and `cutALine` is set.
public struct LineRuns: Sendable {
    /// The longest unfinished line carried between pieces.
    public static let maximumLine = 1 << 20

    private var carry: [UInt8] = []
    /// A line longer than `maximumLine` was handed out in more than one run.
    public private(set) var cutALine = false

    public init() {}

    /// Hands the whole lines of `piece` (with what was carried) to `body`; keeps the rest.
    public mutating func feed(_ piece: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        guard !piece.isEmpty else { return }
        guard let lastLF = piece.lastIndex(of: Byte.lf) else {
            carry.append(contentsOf: piece)
            if carry.count > Self.maximumLine { cutALine = true; try flush(body) }
            return
        }
        var start = piece.startIndex
        if !carry.isEmpty {
            // Only the carried line's end is copied; the lines after it go out in place.
            let firstLF = piece.firstIndex(of: Byte.lf)!   // there is one: lastLF
            carry.append(contentsOf: piece[...firstLF])
            try flush(body)
            start = firstLF + 1
        }
        if start <= lastLF { try body(UnsafeRawBufferPointer(rebasing: piece[start...lastLF])) }
        carry.append(contentsOf: piece[(lastLF + 1)...])
        if carry.count > Self.maximumLine { cutALine = true; try flush(body) }
    }

    /// Hands out what is left (the last line when the body does not end with a line break).
    public mutating func finish(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        if !carry.isEmpty { try flush(body) }
    }

    private mutating func flush(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        let run = carry
        carry.removeAll(keepingCapacity: true)
        try run.withUnsafeBytes { try body($0) }
    }
}
