// SPDX-License-Identifier: Apache-2.0
/// Re-emits a parsed entity tree as 7-bit canonical bytes (the rules are on `SignableEntity`).
/// Recursion follows the parsed tree, whose depth `MIMELimits` already bounds.
struct SevenBitConverter {
    private(set) var warnings = [String]()

    /// Changes to an entity's own header.
    private struct HeaderEdits {
        var transferEncoding: String?
        var addCharset: String?
        var addContentType: String?
        var addMIMEVersion = false
    }

    private static let unstructured: Set<String> = ["subject", "comments", "content-description"]

    /// Emits `entity` with the header `fields` (the moved fields at the top level, its own otherwise).
    mutating func emit(_ entity: MIMEEntity, fields: [HeaderField], into out: inout [UInt8]) throws {
        let isTop = entity.role == .topLevel
        let hasContentType = fields.first(named: "Content-Type") != nil
        var edits = HeaderEdits()
        // The blank line after the header is written unless the entity ends with its header.
        let alwaysSeparate = isTop || !entity.separatorRange.isEmpty

        switch entity.content {
        case .leaf:
            // A leaf that stays as it is is a slice of the parsed buffer: no copy of its bytes
            // until they land in `out`.
            var body = ArraySlice<UInt8>()
            try convertLeaf(entity, hasContentType: hasContentType, edits: &edits, body: &body)
            addMIMEVersionIfNeeded(entity, fields: fields, edits: &edits)
            emitHeader(fields, edits: edits, section: entity.section, into: &out)
            if alwaysSeparate || !body.isEmpty { out.append(contentsOf: Byte.crlf) }
            out.append(contentsOf: body)
        case .multipart, .message:
            if entity.transferEncoding == .eightBit || entity.transferEncoding == .binary { edits.transferEncoding = "7bit" }
            addMIMEVersionIfNeeded(entity, fields: fields, edits: &edits)
            emitHeader(fields, edits: edits, section: entity.section, into: &out)
            // The body goes straight into `out` (no buffer per nesting level); the blank line is
            // taken back when the body turns out empty and none was needed.
            out.append(contentsOf: Byte.crlf)
            let bodyStart = out.count
            if case .multipart(let m) = entity.content {
                try emitMultipart(entity, m, into: &out)
            } else if case .message(let inner) = entity.content {
                try emit(inner, fields: inner.fields, into: &out)
            }
            if !alwaysSeparate && out.count == bodyStart { out.removeLast(2) }
        }
    }

    private func addMIMEVersionIfNeeded(_ entity: MIMEEntity, fields: [HeaderField], edits: inout HeaderEdits) {
        if entity.role == .encapsulatedMessage, edits.addContentType != nil || edits.transferEncoding != nil,
           fields.first(named: "MIME-Version") == nil {
            edits.addMIMEVersion = true
        }
    }

    // MARK: leaves

    private mutating func convertLeaf(_ e: MIMEEntity, hasContentType: Bool, edits: inout HeaderEdits,
                                      body: inout ArraySlice<UInt8>) throws {
        let ct = e.contentType
        let raw = e.body
        switch e.transferEncoding {
        case .quotedPrintable, .base64:
            let (canonical, facts) = Self.crlfWithFacts(raw)
            if facts.isSafeSevenBit {
                body = canonical
            } else if e.transferEncoding == .quotedPrintable {
                body = ArraySlice(QuotedPrintable.encode(e.decodedBody, isText: true))
            } else {
                body = ArraySlice(Base64Lines.encode(e.decodedBody))
            }
            if !hasContentType && e.role == .topLevel { edits.addContentType = "text/plain; charset=us-ascii" }

        case .sevenBit, .eightBit, .binary:
            let (bytes, facts) = (e.transferEncoding == .binary && !ct.isText) ? (raw, LineFacts(raw)) : Self.crlfWithFacts(raw)
            let charset = Self.charset(of: bytes)
            if facts.isSafeSevenBit {
                body = bytes
                if e.transferEncoding != .sevenBit { edits.transferEncoding = "7bit" }
            } else if ct.isText {
                body = ArraySlice(QuotedPrintable.encode(bytes, isText: true))
                edits.transferEncoding = "quoted-printable"
            } else if ct.isMultipart || ct.type == "message" && ["rfc822", "global", "partial", "external-body"].contains(ct.subtype) {
                throw MIMEError.cannotMake7Bit(section: e.section,
                    reason: "\(ct.mediaType) body has 8-bit data, long lines or unprotected lines, and may not be transfer-encoded"
                        + (e.defects.contains(.boundaryNotFound) ? " (its boundary never occurs)" : "")
                        + (e.defects.contains(.missingBoundary) ? " (it has no boundary parameter)" : ""))
            } else if !facts.hasEightBitOrNUL && !facts.hasLongLine {
                body = ArraySlice(QuotedPrintable.encode(bytes, isText: true))
                edits.transferEncoding = "quoted-printable"
            } else {
                body = ArraySlice(Base64Lines.encode(raw))
                edits.transferEncoding = "base64"
            }
            if !hasContentType {
                if e.role == .topLevel || (ct.isText && facts.hasEightBitOrNUL) {
                    edits.addContentType = "\(ct.mediaType); charset=\(charset)"
                }
            } else if ct.isText && ct.charset == nil && charset != "us-ascii" {
                edits.addCharset = charset
            }

        case .other(let name):
            let (canonical, facts) = Self.crlfWithFacts(raw)
            guard facts.isSafeSevenBit else {
                throw MIMEError.cannotMake7Bit(section: e.section,
                    reason: "unknown Content-Transfer-Encoding \"\(name)\" over data that is not 7-bit safe")
            }
            body = canonical
            if !hasContentType && e.role == .topLevel { edits.addContentType = "text/plain; charset=us-ascii" }
        }
    }

    /// `raw` with CRLF line ends (the slice itself when it already has them, the usual case) and
    /// the facts of its lines. One pass for the usual case: lines with no bare CR or LF are
    /// exactly the CRLF form.
    private static func crlfWithFacts(_ raw: ArraySlice<UInt8>) -> (ArraySlice<UInt8>, LineFacts) {
        let facts = LineFacts(raw)
        if !facts.hasBareLineBreak { return (raw, facts) }
        let canonical = ArraySlice(LineEnds.toCRLF(raw))
        return (canonical, LineFacts(canonical))
    }

    /// The charset to state for bytes whose charset is not stated.
    static func charset(of bytes: ArraySlice<UInt8>) -> String {
        let hasEightBit = bytes.withByteBuffer { $0.contains(where: { $0 >= 0x80 }) }
        if !hasEightBit { return "us-ascii" }
        return String(validating: bytes, as: UTF8.self) != nil ? "utf-8" : "unknown-8bit"
    }

    // MARK: multiparts

    private mutating func emitMultipart(_ e: MIMEEntity, _ m: MIMEEntity.Multipart, into out: inout [UInt8]) throws {
        appendFreeText(e.buffer[m.preambleRange], what: "preamble", section: e.section, into: &out)
        for (part, delimiter) in zip(m.parts, m.delimiterRanges) {
            appendDelimiter(e.buffer[delimiter], into: &out)
            try emit(part, fields: part.fields, into: &out)
        }
        if let close = m.closeDelimiterRange {
            appendDelimiter(e.buffer[close], into: &out)
            appendFreeText(e.buffer[m.epilogueRange], what: "epilogue", section: e.section, into: &out)
        }
    }

    /// A delimiter line with CRLF line ends and without transport padding.
    private func appendDelimiter(_ span: ArraySlice<UInt8>, into out: inout [UInt8]) {
        var line = LineEnds.toCRLF(span)
        var tail = [UInt8]()
        if line.count > 2 && line.suffix(2).elementsEqual(Byte.crlf) {
            line.removeLast(2)
            tail = Byte.crlf
        }
        while let last = line.last, Byte.isWSP(last) { line.removeLast() }
        out.append(contentsOf: line)
        out.append(contentsOf: tail)
    }

    /// Preamble or epilogue: CRLF line ends, trailing white space removed from each line.
    private mutating func appendFreeText(_ span: ArraySlice<UInt8>, what: String, section: String, into out: inout [UInt8]) {
        if span.contains(where: { $0 >= 0x80 }) {
            warnings.append("8-bit bytes kept in the \(what) of \(Self.name(section))")
        }
        let text = LineEnds.toCRLF(span)
        var line = [UInt8]()
        var i = 0
        while i < text.count {
            if text[i] == Byte.cr && i + 1 < text.count && text[i + 1] == Byte.lf {
                while let last = line.last, Byte.isWSP(last) { line.removeLast() }
                out.append(contentsOf: line)
                out.append(contentsOf: Byte.crlf)
                line.removeAll(keepingCapacity: true)
                i += 2
            } else {
                line.append(text[i])
                i += 1
            }
        }
        while let last = line.last, Byte.isWSP(last) { line.removeLast() }
        out.append(contentsOf: line)
    }

    // MARK: headers

    private mutating func emitHeader(_ fields: [HeaderField], edits: HeaderEdits, section: String, into out: inout [UInt8]) {
        var wroteTransferEncoding = false
        var wroteCharset = false
        for field in fields {
            let lower = field.name.lowercased()
            if field.hasLineBreakThatIsNotAFold {
                warnings.append("a line break that is not a fold written as a space in header field \(field.name) of \(Self.name(section))")
            }
            if lower == "content-transfer-encoding", let te = edits.transferEncoding {
                if !wroteTransferEncoding {   // duplicates of a rewritten field are dropped
                    out.append(utf8: "\(field.name): \(te)\r\n")
                    wroteTransferEncoding = true
                }
                continue
            }
            if lower == "content-type", let cs = edits.addCharset, !wroteCharset {
                var value = field.canonicalValueBytes
                while let last = value.last, Byte.isWSP(last) || last == Byte.cr || last == Byte.lf || last == 0x3B {
                    value.removeLast()   // trailing white space and a dangling `;`
                }
                out.append(utf8: field.name + ":")
                out.append(contentsOf: value)
                out.append(utf8: "; charset=\(cs)\r\n")
                wroteCharset = true
                continue
            }
            if field.hasEightBitValue {
                if Self.unstructured.contains(lower) {
                    let raw = LineEnds.toCRLF(field.valueBytes)
                    let unfolded = HeaderText.decode(Self.unfold(raw)).text
                    let trimmed = unfolded.trimmingWhitespace
                    let bytes = field.isLatin1Fallback ? HeaderText.latin1Bytes(trimmed) : Array(trimmed.utf8)
                    let charset = field.isLatin1Fallback ? "unknown-8bit" : "utf-8"
                    out.append(utf8: field.name + ": " + EncodedWord.words(bytes, charset: charset).joined(separator: "\r\n ") + "\r\n")
                    continue
                }
                warnings.append("8-bit bytes kept in header field \(field.name) of \(Self.name(section))")
            }
            out.append(contentsOf: field.canonicalBytes)
        }
        if let ct = edits.addContentType { out.append(utf8: "Content-Type: \(ct)\r\n") }
        if let te = edits.transferEncoding, !wroteTransferEncoding { out.append(utf8: "Content-Transfer-Encoding: \(te)\r\n") }
        if edits.addMIMEVersion { out.append(utf8: "MIME-Version: 1.0\r\n") }
    }

    /// Removes CRLF line breaks (unfolding) from canonical header bytes.
    private static func unfold(_ bytes: [UInt8]) -> [UInt8] {
        bytes.filter { $0 != Byte.cr && $0 != Byte.lf }
    }

    private static func name(_ section: String) -> String {
        section.isEmpty ? "the top level" : "part \(section)"
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
