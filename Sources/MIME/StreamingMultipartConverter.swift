// SPDX-License-Identifier: Apache-2.0
/// Makes the signable entity of a large multipart without holding its large leaves in memory
/// (what a client with 8BITMIME sends: an 8-bit text part beside a base64 attachment): the
/// result is byte for byte what `SignableEntity.make` gives for the whole body.
///
/// One streaming pass (`feed`, then `finish`) reads the body line by line and builds a
/// skeleton: the body with each leaf body over `largeLeaf` bytes replaced by a one-line sample
/// with the same facts (7-bit safe, or not; 8-bit UTF-8, 8-bit other) and a random marker. The
/// in-memory conversion of the skeleton (`SignableEntity.make`, so every header rule is the
/// same code) gives the entity around the large leaves; each sample's converted form is found
/// in it exactly once and replaced by a range of the body: copied as it is when the converter
/// keeps the leaf (7-bit safe, any encoding but `other`), with line ends completed when only
/// bare line ends made it unsafe, or in quoted-printable when it is a text leaf that is not.
/// The leaf bodies' conversions are line-local, so ranges of whole lines convert exactly.
///
/// Conservative: nil (the in-memory path) when the top level is not a multipart, for
/// `message/*` and `multipart/digest` anywhere, for a part header without its blank line, a
/// line that is a delimiter of an enclosing multipart other than the innermost, a line over
/// `LineRuns.maximumLine`, a skeleton over `maximumSkeleton`, a large leaf that is none of the
/// above kinds (or holds NUL), when the needle (a boundary) occurs, and when nothing is large.
/// The skeleton keeps the structure the parser sees: a large leaf's range is exactly its body
/// (up to the line end that belongs to the next delimiter) and holds no delimiter line of an
/// enclosing multipart, and its sample holds no line break.
public struct StreamingMultipartConverter: Sendable {
    /// Leaf bodies over this many bytes stay in the file.
    public static let defaultLargeLeaf = 64 << 10
    /// The skeleton (everything but the large leaves) is held in memory up to this size.
    public static let maximumSkeleton = 4 << 20

    private let fields: [HeaderField]
    private let needle: [UInt8]
    private let largeLeaf: Int
    private let marker: [UInt8]
    private var failed = false
    /// The body offset of the next line's first byte (the start of `partial`).
    private var offset = 0
    private var partial: [UInt8] = []
    private var skeleton: [UInt8] = []
    /// "--boundary" of each open multipart, innermost last.
    private var open: [[UInt8]] = []
    private var state: State = .free
    private var placeholders: [Placeholder] = []

    private enum State: Sendable {
        /// A preamble or epilogue (or between parts of a multipart not yet delimited).
        case free
        /// The lines of a part header since its delimiter.
        case header([UInt8])
        case leaf(Leaf)
    }

    /// A leaf body being read.
    private struct Leaf: Sendable {
        let type: ContentType
        let encoding: TransferEncoding
        let start: Int
        let skeletonStart: Int
        var size = 0
        var large = false
        /// Facts of the bytes as they are, and with CRLF line ends.
        var raw = LineFacts([UInt8]())
        var canonical = LineFacts([UInt8]())
        var hasEightBit = false
        var validUTF8 = true
        var hasNUL = false
        var needleFound = false
        /// The line end of the last line read: it belongs to a following delimiter.
        var lastTerminator: [UInt8] = []
    }

    private struct Placeholder: Sendable {
        let converted: [UInt8]
        let segment: StreamedEntityPlan.Segment
    }

    /// Nil unless the top level is a multipart (not a digest) with a boundary.
    public init?(fields: [HeaderField], needle: [UInt8], largeLeaf: Int = StreamingMultipartConverter.defaultLargeLeaf) {
        guard let type = fields.first(named: "Content-Type").flatMap({ ContentType(parsing: $0.value) }),
              type.isMultipart, type.subtype != "digest", let boundary = type.boundary, !boundary.isEmpty
        else { return nil }
        self.fields = fields
        self.needle = needle
        self.largeLeaf = max(largeLeaf, 1)
        var random = SystemRandomNumberGenerator()
        // Short enough that its quoted-printable form (with "=C3=A9=20") needs no soft break.
        let hex = (0..<2).map { _ in String(random.next() as UInt64, radix: 16) }.joined()
        marker = Array("smime-leaf-\(hex)-".utf8)
        open = [Array(("--" + boundary).utf8)]
    }

    /// Feeds the next piece of the body (pass 1).
    public mutating func feed(_ piece: UnsafeRawBufferPointer) {
        guard !failed, !piece.isEmpty else { return }
        let b = piece.bindMemory(to: UInt8.self)
        var start = 0
        while !failed, let lf = b[start...].firstIndex(of: Byte.lf) {
            if partial.isEmpty {
                line(UnsafeBufferPointer(rebasing: b[start...lf]))
            } else {
                partial.append(contentsOf: b[start...lf])
                let whole = partial
                partial.removeAll(keepingCapacity: true)
                whole.withUnsafeBufferPointer { line($0) }
            }
            start = lf + 1
        }
        guard !failed, start < b.count else { return }
        partial.append(contentsOf: b[start...])
        if partial.count > LineRuns.maximumLine { failed = true }
    }

    /// Ends pass 1: the plan of the entity, or nil for the in-memory path. Throws what
    /// `SignableEntity.make` throws for the skeleton (the whole body would throw the same).
    public mutating func finish(protectingHeaders: Bool = false) throws -> StreamedEntityPlan? {
        if !failed, !partial.isEmpty {
            let last = partial
            partial = []
            last.withUnsafeBufferPointer { line($0) }
        }
        if !failed, case .leaf(let leaf) = state { endLeaf(leaf, terminatorBelongsToDelimiter: false) }
        guard !failed, !placeholders.isEmpty else { return nil }
        var entity = try SignableEntity.make(fields: fields, body: skeleton)
        if protectingHeaders { entity = entity.protectingHeaders(fields) }
        let bytes = entity.bytes
        guard !ByteSearch.contains(bytes, needle) else { return nil }
        var segments: [StreamedEntityPlan.Segment] = []
        var position = 0
        for placeholder in placeholders {
            let found = bytes.withUnsafeBufferPointer {
                ByteSearch.firstOffset(of: placeholder.converted, in: UnsafeBufferPointer(rebasing: $0[position...]))
            }
            guard let found else { return nil }
            segments.append(.bytes(Array(bytes[position..<(position + found)])))
            segments.append(placeholder.segment)
            position += found + placeholder.converted.count
        }
        segments.append(.bytes(Array(bytes[position...])))
        // Each sample exactly once: the marker occurs nowhere else.
        var occurrences = 0
        bytes.withUnsafeBufferPointer { all in
            var from = 0
            while let at = ByteSearch.firstOffset(of: marker, in: UnsafeBufferPointer(rebasing: all[from...])) {
                occurrences += 1
                from += at + marker.count
            }
        }
        guard occurrences == placeholders.count else { return nil }
        return StreamedEntityPlan(segments: segments.filter { $0 != .bytes([]) })
    }

    // MARK: lines

    /// One line with its LF (the last line of the body may have none).
    private mutating func line(_ line: UnsafeBufferPointer<UInt8>) {
        defer { offset += line.count }
        if let (index, isClose) = delimiter(line) {
            guard index == open.count - 1 else { failed = true; return }
            switch state {
            case .header: failed = true; return   // a part without its blank line
            case .leaf(let leaf): endLeaf(leaf, terminatorBelongsToDelimiter: true)
            case .free: break
            }
            append(line)
            if isClose {
                open.removeLast()
                state = .free
            } else {
                state = .header([])
            }
            return
        }
        switch state {
        case .free:
            append(line)
        case .header(var header):
            header.append(contentsOf: line)
            append(line)
            guard header.count <= 64 * 1024 else { failed = true; return }
            let content = line.count - (line.last == Byte.lf ? 1 : 0)
            if content == 0 || (content == 1 && line[0] == Byte.cr) {
                endHeader(header, bodyStart: offset + line.count)
            } else {
                state = .header(header)
            }
        case .leaf(var leaf):
            bodyLine(line, &leaf)
            state = .leaf(leaf)
        }
    }

    /// Which open multipart `line` is a delimiter of (RFC 2046 padding as `MIMEParser`), if any.
    private func delimiter(_ line: UnsafeBufferPointer<UInt8>) -> (Int, Bool)? {
        guard line.count >= 2, line[0] == Byte.dash, line[1] == Byte.dash else { return nil }
        var end = line.count
        if line[end - 1] == Byte.lf { end -= 1 }
        for (index, dash) in open.enumerated().reversed() where end >= dash.count && line.starts(with: dash) {
            var i = dash.count
            var isClose = false
            if i + 1 < end, line[i] == Byte.dash, line[i + 1] == Byte.dash { isClose = true; i += 2 }
            while i < end && (Byte.isWSP(line[i]) || (line[i] == Byte.cr && i == end - 1)) { i += 1 }
            if i == end { return (index, isClose) }
        }
        return nil
    }

    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        skeleton.append(contentsOf: bytes)
        if skeleton.count > Self.maximumSkeleton { failed = true }
    }

    /// The blank line after a part header: a nested multipart opens, or a leaf starts.
    private mutating func endHeader(_ header: [UInt8], bodyStart: Int) {
        guard let parsed = try? HeaderParser.parse(header, in: 0..<header.count, limits: MIMELimits()),
              parsed.hadBlankLine, parsed.bodyStart == header.count else { failed = true; return }
        let type = parsed.fields.first(named: "Content-Type").flatMap { ContentType(parsing: $0.value) } ?? .defaultType
        guard type.type != "message", !(type.isMultipart && type.subtype == "digest") else { failed = true; return }
        if type.isMultipart, let boundary = type.boundary, !boundary.isEmpty {
            open.append(Array(("--" + boundary).utf8))
            state = .free
            return
        }
        let encoding = parsed.fields.first(named: "Content-Transfer-Encoding").map { TransferEncoding(parsing: $0.value) } ?? .sevenBit
        state = .leaf(Leaf(type: type, encoding: encoding, start: bodyStart, skeletonStart: skeleton.count))
    }

    private mutating func bodyLine(_ line: UnsafeBufferPointer<UInt8>, _ leaf: inout Leaf) {
        // The previous line's end is inside the body, now that another line follows.
        if leaf.lastTerminator == [Byte.lf] { leaf.raw.hasBareLineBreak = true }
        var end = line.count
        leaf.lastTerminator = []
        if end > 0, line[end - 1] == Byte.lf {
            end -= 1
            if end > 0, line[end - 1] == Byte.cr { end -= 1; leaf.lastTerminator = Byte.crlf } else { leaf.lastTerminator = [Byte.lf] }
        }
        let content = UnsafeBufferPointer(rebasing: line[0..<end])
        let facts = LineFacts(content)
        leaf.raw.merge(facts)
        if content.contains(Byte.cr) {
            leaf.canonical.merge(LineFacts(LineEnds.toCRLF(content)))
        } else {
            var canonical = facts
            canonical.hasBareLineBreak = false
            leaf.canonical.merge(canonical)
        }
        for byte in content where byte >= 0x80 || byte == 0 {
            if byte == 0 { leaf.hasNUL = true } else { leaf.hasEightBit = true }
        }
        if leaf.hasEightBit, leaf.validUTF8, content.contains(where: { $0 >= 0x80 }),
           String(validating: content, as: UTF8.self) == nil {
            leaf.validUTF8 = false
        }
        if !leaf.needleFound, !needle.isEmpty, ByteSearch.firstOffset(of: needle, in: content) != nil { leaf.needleFound = true }
        leaf.size += line.count
        if !leaf.large {
            append(line)
            if leaf.size > largeLeaf {
                leaf.large = true
                skeleton.removeSubrange(leaf.skeletonStart...)
            }
        }
    }

    /// The end of a leaf body: a large one becomes a sample in the skeleton and a placeholder.
    private mutating func endLeaf(_ leaf: Leaf, terminatorBelongsToDelimiter: Bool) {
        state = .free
        guard leaf.large else { return }
        var raw = leaf.raw
        let canonical = leaf.canonical
        var end = leaf.start + leaf.size
        if terminatorBelongsToDelimiter {
            end -= leaf.lastTerminator.count
        } else if leaf.lastTerminator == [Byte.lf] {
            raw.hasBareLineBreak = true
        }
        guard !leaf.needleFound, !leaf.hasNUL, !leaf.type.isMultipart, end > leaf.start else { failed = true; return }
        var id = Array(String(placeholders.count + 1).utf8)
        while id.count < 6 { id.insert(0x30, at: 0) }
        let sample = marker + id
        let range = leaf.start..<end
        let encoding = leaf.encoding
        let converted: [UInt8]
        let segment: StreamedEntityPlan.Segment
        let identity = encoding == .sevenBit || encoding == .eightBit || encoding == .binary
        if raw.isSafeSevenBit, identity || encoding == .base64 || encoding == .quotedPrintable {
            converted = sample
            segment = .verbatim(range)
        } else if leaf.type.isText, identity, canonical.isSafeSevenBit {
            converted = sample
            segment = .crlf(range)
        } else if leaf.type.isText, identity {
            // Not 7-bit safe: a trailing space makes the sample unsafe too; the 8-bit byte (or
            // its absence) and its UTF-8 validity choose the same charset.
            var text = sample
            if leaf.hasEightBit { text += leaf.validUTF8 ? [0xC3, 0xA9] : [0xE9] }
            text.append(Byte.space)
            skeleton.append(contentsOf: text)
            skeleton.append(contentsOf: terminatorBelongsToDelimiter ? leaf.lastTerminator : [])
            placeholders.append(Placeholder(converted: QuotedPrintable.encode(text, isText: true), segment: .quotedPrintable(range)))
            return
        } else {
            failed = true
            return
        }
        skeleton.append(contentsOf: sample)
        skeleton.append(contentsOf: terminatorBelongsToDelimiter ? leaf.lastTerminator : [])
        placeholders.append(Placeholder(converted: converted, segment: segment))
    }
}

extension LineFacts {
    /// Adds the facts of more lines.
    mutating func merge(_ other: LineFacts) {
        hasEightBitOrNUL = hasEightBitOrNUL || other.hasEightBitOrNUL
        hasLongLine = hasLongLine || other.hasLongLine
        hasFromLine = hasFromLine || other.hasFromLine
        hasTrailingWhitespace = hasTrailingWhitespace || other.hasTrailingWhitespace
        hasBareLineBreak = hasBareLineBreak || other.hasBareLineBreak
    }
}
