// SPDX-License-Identifier: Apache-2.0
/// Builds the `MIMEEntity` tree of a message.
///
/// Boundary handling follows RFC 2046 §5.1.1: a delimiter is `--boundary` at the start of a line,
/// followed by optional transport padding (spaces, tabs) and a line end; the line end before it
/// belongs to the delimiter. Lines with other text after `--boundary` are content. Line ends may be
/// CRLF or bare LF (the parser never rewrites bytes, so ranges are exact).
///
/// Tolerated and recorded in `defects`: a missing close-delimiter (the last part runs to the end);
/// a multipart whose boundary parameter is missing or never occurs (the entity is a leaf); a part
/// without a blank line after its header. Exceeding `MIMELimits` throws.
public enum MIMEParser {
    /// Parses a message given as its top-level header fields and its body.
    public static func parse(fields: [HeaderField], body: [UInt8], limits: MIMELimits = MIMELimits()) throws -> MIMEEntity {
        var builder = Builder(buffer: body, limits: limits)
        return try builder.entity(fields: fields, headerRange: 0..<0, bodyRange: 0..<body.count, range: 0..<body.count,
                                  role: .topLevel, section: "", depth: 0, defaultType: .defaultType, defects: [])
    }

    /// Parses a whole message held in one buffer: the top-level header is in the buffer too, so
    /// `headerRange` of the result is set. Line ends are left as they are.
    public static func parse(message: [UInt8], limits: MIMELimits = MIMELimits()) throws -> MIMEEntity {
        var builder = Builder(buffer: message, limits: limits)
        let h = try HeaderParser.parse(message, in: 0..<message.count, limits: limits)
        return try builder.entity(fields: h.fields, headerRange: h.headerRange, bodyRange: h.bodyStart..<message.count,
                                  range: 0..<message.count, role: .topLevel, section: "", depth: 0,
                                  defaultType: .defaultType, defects: h.endedByNonFieldLine ? [.missingBlankLine] : [])
    }

    /// The entity of a part of which only the first bytes are at hand (`prefix`: the start of
    /// part 1 of a large spooled multipart/signed), parsed as far as its header and, for a
    /// `message/rfc822` (or global) in an identity encoding, the encapsulated message's header:
    /// the fields are those a parse of the whole part gives, the bodies are left empty.
    ///
    /// Nil when a header needed does not end with a blank line inside `prefix` (it may run on
    /// past the cut, or end without a blank line): the caller then needs the whole part.
    public static func parseHeaders(ofPrefix prefix: [UInt8], limits: MIMELimits = MIMELimits()) throws -> MIMEEntity? {
        func headerEnd(from start: Int) throws -> (end: Int, fields: [HeaderField])? {
            let h = try HeaderParser.parse(prefix, in: start..<prefix.count, limits: limits)
            // A blank line whose LF is inside the prefix: a CR cut from its LF is not one.
            guard h.hadBlankLine, h.bodyStart > start, h.bodyStart <= prefix.count,
                  prefix[h.bodyStart - 1] == Byte.lf else { return nil }
            return (h.bodyStart, h.fields)
        }
        guard let outer = try headerEnd(from: 0) else { return nil }
        var cut = outer.end
        let type = outer.fields.first(named: "Content-Type").flatMap { ContentType(parsing: $0.value) } ?? .defaultType
        let cte = outer.fields.first(named: "Content-Transfer-Encoding").map { TransferEncoding(parsing: $0.value) } ?? .sevenBit
        if type.isEncapsulatedMessage, cte.isIdentity {
            guard let inner = try headerEnd(from: outer.end) else { return nil }
            cut = inner.end
        }
        return try parse(message: Array(prefix[0..<cut]), limits: limits)
    }

    private struct Builder {
        let buffer: [UInt8]
        let limits: MIMELimits
        var count = 0

        init(buffer: [UInt8], limits: MIMELimits) {
            self.buffer = buffer
            self.limits = limits
        }

        mutating func entity(fields: [HeaderField], headerRange: Range<Int>, bodyRange: Range<Int>, range: Range<Int>,
                             role: MIMEEntity.Role, section: String, depth: Int, defaultType: ContentType,
                             defects initialDefects: [MIMEDefect]) throws -> MIMEEntity {
            if depth > limits.maxDepth { throw MIMEError.tooDeep(limit: limits.maxDepth) }
            count += 1
            if count > limits.maxParts { throw MIMEError.tooManyParts(limit: limits.maxParts) }

            var defects = initialDefects
            var contentType = defaultType
            if let f = fields.first(named: "Content-Type") {
                if let ct = ContentType(parsing: f.value) {
                    contentType = ct
                } else {
                    contentType = .defaultType
                    defects.append(.invalidContentType)
                }
            }
            let cte = fields.first(named: "Content-Transfer-Encoding").map { TransferEncoding(parsing: $0.value) } ?? .sevenBit
            if case .other(let name) = cte { defects.append(.unknownTransferEncoding(name)) }
            let disposition = fields.first(named: "Content-Disposition").flatMap { ContentDisposition(parsing: $0.value) }

            var content = MIMEEntity.Content.leaf
            if contentType.isMultipart {
                if let boundary = contentType.boundary, !boundary.isEmpty {
                    if let m = try multipart(boundary: boundary, in: bodyRange, parentSection: section, depth: depth,
                                             digest: contentType.subtype == "digest") {
                        content = .multipart(m)
                        if !m.isTerminated { defects.append(.missingCloseDelimiter) }
                    } else {
                        defects.append(.boundaryNotFound)
                    }
                } else {
                    defects.append(.missingBoundary)
                }
            } else if contentType.isEncapsulatedMessage {
                if cte.isIdentity {
                    let h = try HeaderParser.parse(buffer, in: bodyRange, limits: limits)
                    let inner = try entity(fields: h.fields, headerRange: h.headerRange,
                                           bodyRange: h.bodyStart..<bodyRange.upperBound, range: bodyRange,
                                           role: .encapsulatedMessage, section: section, depth: depth + 1,
                                           defaultType: .defaultType,
                                           defects: h.endedByNonFieldLine ? [.missingBlankLine] : [])
                    content = .message(inner)
                } else {
                    defects.append(.encodedEncapsulatedMessage)
                }
            }
            return MIMEEntity(buffer: buffer, fields: fields, contentType: contentType, transferEncoding: cte,
                              disposition: disposition, role: role, section: section, depth: depth, range: range,
                              headerRange: headerRange, bodyRange: bodyRange, content: content, defects: defects)
        }

        /// Splits a multipart body; nil when the boundary never occurs.
        mutating func multipart(boundary: String, in body: Range<Int>, parentSection: String, depth: Int,
                                digest: Bool) throws -> MIMEEntity.Multipart? {
            let delimiters = findDelimiters(Array(("--" + boundary).utf8), in: body)
            guard let first = delimiters.first else { return nil }
            var parts = [MIMEEntity]()
            var delimiterRanges = [Range<Int>]()
            var close: Range<Int>?
            for (n, d) in delimiters.enumerated() {
                if d.isClose { close = d.span; break }
                delimiterRanges.append(d.span)
                let partEnd = n + 1 < delimiters.count ? delimiters[n + 1].span.lowerBound : body.upperBound
                let partRange = d.span.upperBound..<partEnd
                let h = try HeaderParser.parse(buffer, in: partRange, limits: limits)
                let number = parts.count + 1
                let section = parentSection.isEmpty ? "\(number)" : "\(parentSection).\(number)"
                parts.append(try entity(fields: h.fields, headerRange: h.headerRange,
                                        bodyRange: h.bodyStart..<partRange.upperBound, range: partRange,
                                        role: .bodyPart, section: section, depth: depth + 1,
                                        defaultType: digest ? .digestDefault : .defaultType,
                                        defects: h.endedByNonFieldLine ? [.missingBlankLine] : []))
            }
            let epilogueStart = close?.upperBound ?? body.upperBound
            return MIMEEntity.Multipart(boundary: boundary, preambleRange: body.lowerBound..<first.span.lowerBound,
                                        delimiterRanges: delimiterRanges, parts: parts, closeDelimiterRange: close,
                                        epilogueRange: epilogueStart..<body.upperBound)
        }

        struct Delimiter {
            var span: Range<Int>
            var isClose: Bool
        }

        /// Finds delimiter lines in order, up to and including the first close-delimiter.
        func findDelimiters(_ dash: [UInt8], in body: Range<Int>) -> [Delimiter] {
            // Over raw buffers with ByteSearch (memchr, memcmp): subscripting the array per byte
            // (with its bounds check) was the parser's largest cost on a signed message (callgrind).
            buffer.withUnsafeBufferPointer { bytes in
                dash.withUnsafeBufferPointer { dash in
                    Self.findDelimiters(dash, in: body, of: bytes)
                }
            }
        }

        static func findDelimiters(_ dash: UnsafeBufferPointer<UInt8>, in body: Range<Int>,
                                   of buffer: UnsafeBufferPointer<UInt8>) -> [Delimiter] {
            var found = [Delimiter]()
            guard body.lowerBound >= 0, body.upperBound <= buffer.count else { return found }
            var lineStart = body.lowerBound
            // A line end already used by one delimiter cannot also open the next one.
            var previousEnd = body.lowerBound
            let end = body.upperBound
            while lineStart < end {
                let lf = ByteSearch.firstOffset(of: Byte.lf, in: buffer, within: lineStart..<end) ?? end
                let next = lf < end ? lf + 1 : end
                if lf - lineStart >= dash.count && ByteSearch.occurs(dash, at: lineStart, in: buffer) {
                    var i = lineStart + dash.count
                    var isClose = false
                    if i + 1 < lf, buffer[i] == Byte.dash, buffer[i + 1] == Byte.dash {
                        isClose = true
                        i += 2
                    }
                    // Only transport padding (and the CR of CRLF) may follow.
                    while i < lf && (Byte.isWSP(buffer[i]) || (buffer[i] == Byte.cr && i == lf - 1)) { i += 1 }
                    if i == lf {
                        var spanStart = lineStart
                        if lineStart > previousEnd {
                            spanStart = lineStart - 1   // the LF ending the previous line
                            if spanStart > previousEnd && buffer[spanStart - 1] == Byte.cr { spanStart -= 1 }
                        }
                        found.append(Delimiter(span: spanStart..<next, isClose: isClose))
                        previousEnd = next
                        if isClose { return found }
                    }
                }
                lineStart = next
            }
            return found
        }
    }
}
