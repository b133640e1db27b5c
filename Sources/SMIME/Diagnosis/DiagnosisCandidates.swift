// SPDX-License-Identifier: Apache-2.0
import MIME

/// Builds candidate reconstructions of the original signed bytes, one transformation at a time.
///
/// `base` is the received signed content in canonical CRLF form; `entity` is it parsed (nil when
/// it does not parse). Every generator is bounded: it looks at a bounded number of leaves, line
/// boundaries and cut points, and whole-content rewrites are skipped above `maxTransformBytes`.
struct DiagnosisCandidates {
    let raw: [UInt8]
    let base: [UInt8]
    let entity: MIMEEntity?
    let options: DiagnosisOptions
    /// The verifier already hashed the canonical form; do not try it again.
    let canonicalChecked: Bool
    /// Whole-content rewrites in Swift (QP decoding, scanning for `-- ` lines) above this size are skipped.
    let maxTransformBytes: Int
    /// Bounds for parsing a reconstruction that another change is looked for in.
    var limits = MIMELimits(maxDepth: 32, maxParts: 1_000)

    var total: Int { base.count }

    func single(_ candidate: DiagnosisCandidate) -> [DiagnosisCandidateGroup] {
        [DiagnosisCandidateGroup(prefix: 0..<0, candidates: [candidate])]
    }

    // MARK: whole content

    func lineEnds() -> [DiagnosisCandidateGroup] {
        var out: [DiagnosisCandidate] = []
        let rawDiffers = raw != base
        if rawDiffers {
            out.append(DiagnosisCandidate(
                cause: .lineEndsChanged,
                detail: "the signature was made over the content with bare LF line ends, as it is stored, "
                    + "not over the canonical CRLF form (RFC 8551 §3.1.1)",
                pieces: [.bytes(raw)]))
            if !canonicalChecked {
                out.append(DiagnosisCandidate(
                    cause: .lineEndsChanged,
                    detail: "this copy has LF line ends; the signature was made over the canonical CRLF form "
                        + "and verifies once the line ends are CRLF again",
                    pieces: [.base(0..<total)]))
            }
        }
        if base.contains(0x0D), !(rawDiffers && !raw.contains(0x0D)) {
            out.append(DiagnosisCandidate(
                cause: .lineEndsChanged,
                detail: "the signer hashed the content with LF line ends (it did not canonicalise to CRLF, "
                    + "RFC 8551 §3.1.1); the content arrived with CRLF",
                pieces: [.lf(0..<total)]))
        }
        return out.map { DiagnosisCandidateGroup(prefix: 0..<0, candidates: [$0]) }
    }

    func blankLine() -> [DiagnosisCandidateGroup] {
        let endsWithCRLF = total >= 2 && base[total - 2] == 0x0D && base[total - 1] == 0x0A
        var candidates = [DiagnosisCandidate(
            cause: .blankLineBeforeBoundary(.removed),
            detail: "the signed part ended with a blank line that was removed before the boundary "
                + "(the CRLF before a delimiter belongs to the delimiter, RFC 2046 §5.1.1)",
            pieces: endsWithCRLF ? [.base(total - 2..<total), .bytes(DiagnosisBytes.crlf)] : [.bytes(DiagnosisBytes.crlf)])]
        if endsWithCRLF {
            candidates.append(DiagnosisCandidate(
                cause: .blankLineBeforeBoundary(.added),
                detail: "a blank line was added at the end of the signed part, before the boundary",
                pieces: []))
        }
        return [DiagnosisCandidateGroup(prefix: 0..<(endsWithCRLF ? total - 2 : total), candidates: candidates)]
    }

    /// `--` lines get back the trailing space of the `-- ` signature separator.
    func signatureSeparator() -> [DiagnosisCandidateGroup] {
        guard total <= maxTransformBytes else { return [] }
        var positions: [Int] = []
        if total >= 4, Array(base[0..<4]) == Array("--\r\n".utf8) { positions.append(2) }
        guard let found = DiagnosisBytes.occurrences(of: Array("\r\n--\r\n".utf8), in: base, range: 0..<total, limit: 256)
        else { return [] }
        positions += found.map { $0 + 4 }
        guard let first = positions.first else { return [] }
        return [DiagnosisCandidateGroup(prefix: 0..<first, candidates: [DiagnosisCandidate(
            cause: .trailingWhitespaceStripped,
            detail: "the trailing space of the \"-- \" signature separator was stripped (RFC 8551 §3.1.4)",
            pieces: DiagnosisBytes.pieces(from: first, total: total, insertions: positions.map { ($0, [0x20]) }))])]
    }

    /// `>From ` at a line start was `From ` (mbox escaping).
    func fromEscaping() -> [DiagnosisCandidateGroup] {
        guard total <= maxTransformBytes,
              let found = DiagnosisBytes.occurrences(of: Array("\r\n>From ".utf8), in: base, range: 0..<total, limit: 256),
              let first = found.first
        else { return [] }
        return [DiagnosisCandidateGroup(prefix: 0..<(first + 2), candidates: [DiagnosisCandidate(
            cause: .fromEscaped,
            detail: "lines starting \"From \" were escaped to \">From \" (mbox); RFC 8551 §3.1.4 asks signers to encode them",
            pieces: DiagnosisBytes.pieces(from: first + 2, total: total, removals: found.map { ($0 + 2)..<($0 + 3) }))])]
    }

    // MARK: text and HTML footers

    var leaves: [MIMEEntity] {
        guard let entity else { return [] }
        return entity.allEntities.filter { if case .leaf = $0.content { return true } else { return false } }
    }

    func isEditableText(_ leaf: MIMEEntity, subtype: String) -> Bool {
        leaf.contentType.type == "text" && leaf.contentType.subtype == subtype
            && leaf.transferEncoding != .base64 && !leaf.bodyRange.isEmpty
    }

    /// The text/plain leaves a footer tool writes to: the first and the last.
    private var plainLeaves: [MIMEEntity] {
        let plain = leaves.filter { isEditableText($0, subtype: "plain") }
        guard let first = plain.first, let last = plain.last else { return [] }
        return first.bodyRange == last.bodyRange ? [first] : [first, last]
    }

    /// Cut points for text appended at the end of `leaf`: before and after each of the last line ends.
    func footerCuts(_ leaf: MIMEEntity, lines: Int) -> [Int] {
        let body = leaf.bodyRange
        var cuts: [Int] = []
        for cr in DiagnosisBytes.lineEnds(in: base, range: body, limit: lines) {
            if cr + 2 < body.upperBound { cuts.append(cr + 2) }
            cuts.append(cr)
        }
        return cuts
    }

    /// Offsets where an insertion before `</body>` of `leaf` may have started, nearest first.
    func htmlInsertionStarts(_ leaf: MIMEEntity, before end: Int, limit: Int) -> [Int] {
        DiagnosisBytes.insertionStarts(in: base, from: leaf.bodyRange.lowerBound, before: end, limit: limit)
    }

    private var htmlLeaf: (leaf: MIMEEntity, bodyTag: Int)? {
        guard let leaf = leaves.last(where: { isEditableText($0, subtype: "html") }),
              let tag = DiagnosisBytes.lastOccurrence(ofCaseInsensitive: "</body", in: base, range: leaf.bodyRange)
        else { return nil }
        return (leaf, tag)
    }

    /// The same footer in the text/plain part and before `</body>` of the HTML part (altermime
    /// with `--disclaimer` and `--disclaimer-html`): the text cut names the footer, whose first
    /// line is looked for in the HTML part to find the insertion there.
    func textAndHTMLFooters() -> [DiagnosisCandidateGroup] {
        guard let (html, tag) = htmlLeaf, let plain = plainLeaves.last else { return [] }
        var candidates: [(removals: [Range<Int>], footer: String?)] = []
        for cut in footerCuts(plain, lines: min(8, options.maxFooterLines)) where cut + 1 < plain.bodyRange.upperBound {
            guard let footer = DiagnosisBytes.firstLine(base[cut..<plain.bodyRange.upperBound], qp: false),
                  footer.utf8.count >= 4,
                  let seen = DiagnosisBytes.lastOccurrence(ofCaseInsensitive: String(footer.prefix(40)), in: base,
                                                           range: max(html.bodyRange.lowerBound, tag - 8_192)..<tag)
            else { continue }
            for start in htmlInsertionStarts(html, before: seen + 1, limit: 8) {
                let removals = [cut..<plain.bodyRange.upperBound, start..<tag].sorted { $0.lowerBound < $1.lowerBound }
                if removals[0].upperBound <= removals[1].lowerBound { candidates.append((removals, footer)) }
            }
            if candidates.count >= 16 { break }
        }
        guard let lowest = candidates.map({ $0.removals[0].lowerBound }).min() else { return [] }
        return [DiagnosisCandidateGroup(prefix: 0..<lowest, candidates: candidates.prefix(16).map { candidate in
            DiagnosisCandidate(
                cause: .textAppended,
                detail: "the same footer was appended to the text/plain part and inserted before </body> of the "
                    + "text/html part (as altermime does)",
                mediaType: "text/plain and text/html",
                footer: candidate.footer,
                pieces: DiagnosisBytes.pieces(from: lowest, total: total, removals: candidate.removals))
        })]
    }

    // MARK: structure

    /// The last part (or the last two) of the signed multipart, or of a multipart inside it, removed.
    func appendedParts() -> [DiagnosisCandidateGroup] {
        var out: [DiagnosisCandidateGroup] = []
        for node in multiparts {
            guard let multipart = node.multipart, let close = multipart.closeDelimiterRange, multipart.parts.count >= 2
            else { continue }
            let inner = node.section.isEmpty ? "the signed" : "the inner"
            for removed in 1...min(2, multipart.parts.count - 1) {
                let from = multipart.delimiterRanges[multipart.parts.count - removed].lowerBound
                let part = multipart.parts[multipart.parts.count - removed]
                let footer = part.contentType.isText
                    ? DiagnosisBytes.firstLine(part.decodedBody.prefix(4_096), qp: false, html: part.contentType.subtype == "html")
                    : part.disposition?.filename ?? part.contentType.mediaType
                out.append(DiagnosisCandidateGroup(prefix: 0..<from, candidates: [DiagnosisCandidate(
                    cause: .partAppended,
                    detail: removed == 1
                        ? "a \(part.contentType.mediaType) part was appended to \(inner) \(node.contentType.mediaType)"
                        : "two parts were appended to \(inner) \(node.contentType.mediaType)",
                    mediaType: part.contentType.mediaType,
                    footer: footer,
                    pieces: [.base(close.lowerBound..<total)])]))
            }
        }
        return out
    }

    // MARK: transfer encodings

    /// The Content-Transfer-Encoding field value range and the whole field range (with its line
    /// end) of `entity`'s header, if the field occurs once.
    func field(_ name: String, in entity: MIMEEntity) -> (field: Range<Int>, value: Range<Int>)? {
        let header = entity.headerRange
        guard !header.isEmpty else { return nil }
        let wanted = Array(name.lowercased().utf8) + [0x3A]
        var found: (Range<Int>, Range<Int>)?
        var lineStart = header.lowerBound
        while lineStart < header.upperBound {
            var fieldEnd = lineStart
            // A field runs to the CRLF that is not followed by white space.
            repeat {
                guard let lf = base[fieldEnd..<header.upperBound].firstIndex(of: 0x0A) else { fieldEnd = header.upperBound; break }
                fieldEnd = lf + 1
            } while fieldEnd < header.upperBound && (base[fieldEnd] == 0x20 || base[fieldEnd] == 0x09)
            if fieldEnd - lineStart > wanted.count,
               zip(base[lineStart..<(lineStart + wanted.count)], wanted).allSatisfy({ DiagnosisBytes.lower($0) == $1 }) {
                if found != nil { return nil }
                let valueEnd = fieldEnd >= 2 && base[fieldEnd - 2] == 0x0D ? fieldEnd - 2 : fieldEnd - 1
                found = (lineStart..<fieldEnd, (lineStart + wanted.count)..<max(lineStart + wanted.count, valueEnd))
            }
            lineStart = fieldEnd
        }
        return found
    }

    /// Quoted-printable leaves that decode to 8-bit text, as an 8bit→QP downgrade (Postfix,
    /// Sendmail, reformime) leaves them: decoded, with the field spelled as before, or without
    /// the field when the converter added it; an `X-MIME-Autoconverted` field is removed.
    func quotedPrintableDowngrade() -> [DiagnosisCandidateGroup] {
        var converted: [(leaf: MIMEEntity, cte: (field: Range<Int>, value: Range<Int>), decoded: [UInt8], marker: Range<Int>?)] = []
        var budget = maxTransformBytes
        for leaf in leaves where leaf.transferEncoding == .quotedPrintable {
            guard leaf.body.count <= budget, let cte = field("Content-Transfer-Encoding", in: leaf) else { continue }
            budget -= leaf.body.count
            let decoded = QuotedPrintable.decode(leaf.body)
            guard decoded.contains(where: { $0 >= 0x80 }) else { continue }
            converted.append((leaf, cte, decoded, field("X-MIME-Autoconverted", in: leaf)?.field))
            if converted.count >= 64 { break }
        }
        guard !converted.isEmpty else { return [] }
        func candidate(_ subset: ArraySlice<(leaf: MIMEEntity, cte: (field: Range<Int>, value: Range<Int>), decoded: [UInt8], marker: Range<Int>?)>,
                       spelling: String?, detail: String) -> DiagnosisCandidate {
            var removals: [Range<Int>] = []
            var insertions: [(Int, [UInt8])] = []
            for item in subset {
                if let spelling {
                    removals.append(item.cte.value)
                    insertions.append((item.cte.value.lowerBound, Array(spelling.utf8)))
                } else {
                    removals.append(item.cte.field)
                }
                if let marker = item.marker { removals.append(marker) }
                removals.append(item.leaf.bodyRange)
                insertions.append((item.leaf.bodyRange.lowerBound, item.decoded))
            }
            let media = Set(subset.map { $0.leaf.contentType.mediaType })
            return DiagnosisCandidate(cause: .transferEncodingChanged(.eightBitToQuotedPrintable), detail: detail,
                                      mediaType: media.count == 1 ? media.first : nil,
                                      pieces: DiagnosisBytes.pieces(from: 0, total: total, removals: merge(removals),
                                                                    insertions: insertions))
        }
        let all = converted[...]
        let plural = converted.count == 1 ? "an 8bit part was" : "\(converted.count) 8bit parts were"
        var candidates = [
            candidate(all, spelling: " 8bit", detail: "\(plural) converted to quoted-printable in transit (RFC 8551 §3.1.3)"),
            candidate(all, spelling: " 8BIT", detail: "\(plural) converted to quoted-printable in transit (RFC 8551 §3.1.3)"),
            candidate(all, spelling: nil, detail: "\(plural) without a Content-Transfer-Encoding field converted to "
                      + "quoted-printable in transit (RFC 8551 §3.1.3)"),
        ]
        if converted.count > 1 {
            for index in 0..<min(converted.count, options.maxLeaves) {
                candidates.append(candidate(converted[index...index], spelling: " 8bit",
                                            detail: "the 8bit part \(converted[index].leaf.section) was converted to quoted-printable in transit"))
            }
        }
        return candidates.map { DiagnosisCandidateGroup(prefix: 0..<0, candidates: [$0]) }
    }

    /// Removals sorted and merged (the marker field can sit next to the CTE field).
    func merge(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, range.lowerBound <= last.upperBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                out.append(range)
            }
        }
        return out
    }

    /// Base64 leaves re-wrapped at 76, 64 or 72 columns.
    func base64Rewrap() -> [DiagnosisCandidateGroup] {
        var out: [DiagnosisCandidateGroup] = []
        var budget = maxTransformBytes
        for leaf in leaves.filter({ $0.transferEncoding == .base64 }).prefix(options.maxLeaves) {
            let body = leaf.bodyRange
            guard body.count <= budget else { continue }
            budget -= body.count
            let decoded = Base64Lines.decode(leaf.body)
            guard decoded.garbageCount == 0, !decoded.bytes.isEmpty else { continue }
            let current = (base[body].firstIndex(of: 0x0D) ?? body.upperBound) - body.lowerBound
            let trailing = base[body].reversed().prefix { $0 == 0x0D || $0 == 0x0A }.count
            for width in [76, 64, 72] where width != current {
                var encoded = Base64Lines.encode(decoded.bytes, lineLength: width)
                encoded += base[(body.upperBound - trailing)..<body.upperBound]
                if encoded.elementsEqual(base[body]) { continue }
                out.append(DiagnosisCandidateGroup(prefix: 0..<body.lowerBound, candidates: [DiagnosisCandidate(
                    cause: .transferEncodingChanged(.base64Rewrapped),
                    detail: "the base64 of the \(leaf.contentType.mediaType) part was re-wrapped from \(width) to \(current) columns",
                    mediaType: leaf.contentType.mediaType,
                    pieces: [.bytes(encoded), .base(body.upperBound..<total)])]))
            }
        }
        return out
    }

    /// Quoted-printable leaves decoded and encoded again (with this project's encoder, which
    /// also made them when this milter signed).
    func quotedPrintableReencode() -> [DiagnosisCandidateGroup] {
        var out: [DiagnosisCandidateGroup] = []
        var budget = maxTransformBytes
        for leaf in leaves.filter({ $0.transferEncoding == .quotedPrintable }).prefix(options.maxLeaves) {
            let body = leaf.bodyRange
            guard body.count <= budget else { continue }
            budget -= body.count
            let trailing = base[body].reversed().prefix { $0 == 0x0D || $0 == 0x0A }.count
            let decoded = QuotedPrintable.decode(base[body.lowerBound..<(body.upperBound - trailing)])
            var encoded = QuotedPrintable.encode(decoded, isText: leaf.contentType.isText)
            encoded += base[(body.upperBound - trailing)..<body.upperBound]
            if encoded.elementsEqual(base[body]) { continue }
            out.append(DiagnosisCandidateGroup(prefix: 0..<body.lowerBound, candidates: [DiagnosisCandidate(
                cause: .transferEncodingChanged(.quotedPrintableReencoded),
                detail: "the quoted-printable of the \(leaf.contentType.mediaType) part was re-encoded with other soft line breaks",
                mediaType: leaf.contentType.mediaType,
                pieces: [.bytes(encoded), .base(body.upperBound..<total)])]))
        }
        return out
    }

    // MARK: header fields

    /// The signed entity's own header fields unfolded, or folded at each `;` as common signers do.
    func headerFolding() -> [DiagnosisCandidateGroup] {
        guard let entity, !entity.headerRange.isEmpty else { return [] }
        return headerFolding(in: [entity.headerRange], whose: "the signed part")
    }

    /// The header fields of the parts inside the signed entity (at any depth), all at once.
    func innerHeaderFolding() -> [DiagnosisCandidateGroup] {
        guard let entity else { return [] }
        let headers = entity.allEntities.dropFirst().map(\.headerRange).filter { !$0.isEmpty }.prefix(64)
        return headers.isEmpty ? [] : headerFolding(in: Array(headers), whose: "the parts inside the signed part")
    }

    private func headerFolding(in headers: [Range<Int>], whose: String) -> [DiagnosisCandidateGroup] {
        var out: [DiagnosisCandidate] = []
        var folds: [Int] = []
        var followedBySpace: [Int] = []
        for header in headers {
            guard let found = DiagnosisBytes.occurrences(of: DiagnosisBytes.crlf, in: base, range: header, limit: 1_000),
                  let semicolons = DiagnosisBytes.occurrences(of: [0x3B], in: base, range: header, limit: 64)
            else { continue }
            folds += found.filter { $0 + 2 < header.upperBound && (base[$0 + 2] == 0x20 || base[$0 + 2] == 0x09) }
            followedBySpace += semicolons.filter { $0 + 1 < header.upperBound && (base[$0 + 1] == 0x20 || base[$0 + 1] == 0x09) }
        }
        do {
            let inner = folds
            if !inner.isEmpty {
                out.append(DiagnosisCandidate(
                    cause: .headersChanged(.refolded),
                    detail: "the header fields of \(whose) were folded in transit; unfolded they verify",
                    pieces: DiagnosisBytes.pieces(from: 0, total: total, removals: inner.map { $0..<($0 + 2) })))
            }
        }
        // Fold after `;` in the Content-* fields (Outlook, Apple Mail fold Content-Type so).
        if !followedBySpace.isEmpty {
            let variants: [(String, [Range<Int>], [(Int, [UInt8])])] = [
                ("CRLF inserted before the white space after each ';'", [],
                 followedBySpace.map { ($0 + 1, DiagnosisBytes.crlf) }),
                ("'; ' folded as ';' CRLF TAB", followedBySpace.map { ($0 + 1)..<($0 + 2) },
                 followedBySpace.map { ($0 + 1, DiagnosisBytes.crlf + [0x09]) }),
                ("'; ' folded as ';' CRLF SPACE", followedBySpace.map { ($0 + 1)..<($0 + 2) },
                 followedBySpace.map { ($0 + 1, DiagnosisBytes.crlf + [0x20]) }),
            ]
            for (how, removals, insertions) in variants {
                out.append(DiagnosisCandidate(
                    cause: .headersChanged(.refolded),
                    detail: "the header fields of \(whose) were unfolded in transit (originally \(how))",
                    pieces: DiagnosisBytes.pieces(from: 0, total: total, removals: removals, insertions: insertions)))
            }
        }
        return out.map { DiagnosisCandidateGroup(prefix: 0..<0, candidates: [$0]) }
    }
}
