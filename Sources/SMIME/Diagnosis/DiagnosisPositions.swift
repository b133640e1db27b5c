// SPDX-License-Identifier: Apache-2.0
import MIME

/// Candidates for changes anywhere inside the signed entity: every text part at any depth (7bit,
/// 8bit, quoted-printable and base64), every multipart's boundaries, preamble and epilogue.
///
/// Footer cuts come in two tiers: the nearest `nearFooterLines` line ends of every text part
/// first (most footers are short), the rest up to `maxFooterLines` later, so that one long part
/// cannot use up the digest budget before the other parts are looked at.
extension DiagnosisCandidates {
    /// Line ends from the end of a text part tried in the near tier.
    static let nearFooterLines = 4
    /// HTML insertion starts tried in the near tier.
    static let nearInsertionStarts = 8
    /// At most this many text parts of each kind, and this many multiparts, get candidates.
    static let maxTextLeaves = 8
    static let maxMultiparts = 8

    /// The multiparts of the signed entity, outermost first.
    var multiparts: [MIMEEntity] {
        guard let entity else { return [] }
        return Array(entity.allEntities.lazy.filter { $0.multipart != nil }.prefix(Self.maxMultiparts))
    }

    /// The text leaves of `subtype` (base64-encoded or not), in the order footer tools write to
    /// them: the last, the first, then the others in document order.
    func textLeaves(_ subtype: String, base64: Bool) -> [MIMEEntity] {
        let all = leaves.filter { leaf in
            guard leaf.contentType.type == "text", leaf.contentType.subtype == subtype, !leaf.bodyRange.isEmpty else { return false }
            switch leaf.transferEncoding {
            case .base64: return base64
            case .sevenBit, .eightBit, .binary, .quotedPrintable: return !base64
            case .other: return false
            }
        }
        guard let last = all.last else { return [] }
        var ordered = [last]
        if let first = all.first, first.bodyRange != last.bodyRange { ordered.append(first) }
        ordered += all.dropFirst().dropLast()
        return Array(ordered.prefix(Self.maxTextLeaves))
    }

    /// Cuts at line ends `lines` (offsets of the CR): after the line end, and before it.
    private func lineCuts(atLineEnds ends: some Collection<Int>, below upper: Int) -> [Int] {
        var out: [Int] = []
        for cr in ends {
            if cr + 2 < upper { out.append(cr + 2) }
            out.append(cr)
        }
        return out
    }

    /// Text appended to any text/plain part (not base64): near or far tier.
    func textFooters(near: Bool) -> [DiagnosisCandidateGroup] {
        textLeaves("plain", base64: false).compactMap { leaf in
            let body = leaf.bodyRange
            let ends = DiagnosisBytes.lineEnds(in: base, range: body, limit: near ? Self.nearFooterLines : options.maxFooterLines)
            let cuts = lineCuts(atLineEnds: near ? ends[...] : ends.dropFirst(Self.nearFooterLines), below: body.upperBound)
                .filter { DiagnosisBytes.hasText(base[$0..<body.upperBound]) }
            guard let lowest = cuts.min() else { return nil }
            let qp = leaf.transferEncoding == .quotedPrintable
            return DiagnosisCandidateGroup(prefix: 0..<lowest, candidates: cuts.map { cut in
                DiagnosisCandidate(
                    cause: .textAppended,
                    detail: "text was appended to the \(leaf.contentType.mediaType) part\(where_(leaf)) (a footer or disclaimer)",
                    mediaType: leaf.contentType.mediaType,
                    footer: DiagnosisBytes.firstLine(base[cut..<body.upperBound], qp: qp),
                    pieces: DiagnosisBytes.pieces(from: lowest, total: total, removals: [cut..<body.upperBound]))
            })
        }
    }

    /// " (part 1.2)" for a part below the top, else "".
    func where_(_ leaf: MIMEEntity) -> String { leaf.section.isEmpty ? "" : " (part \(leaf.section))" }

    /// HTML inserted before `</body>` of any text/html part (not base64): near or far tier.
    func htmlInsertions(near: Bool) -> [DiagnosisCandidateGroup] {
        textLeaves("html", base64: false).prefix(options.maxLeaves).compactMap { leaf in
            guard let tag = DiagnosisBytes.lastOccurrence(ofCaseInsensitive: "</body", in: base, range: leaf.bodyRange)
            else { return nil }
            let all = htmlInsertionStarts(leaf, before: tag, limit: near ? Self.nearInsertionStarts : options.maxFooterLines)
            let starts = (near ? all : Array(all.dropFirst(Self.nearInsertionStarts)))
                .filter { DiagnosisBytes.hasText(base[$0..<tag]) }
            guard let lowest = starts.min() else { return nil }
            let qp = leaf.transferEncoding == .quotedPrintable
            return DiagnosisCandidateGroup(prefix: 0..<lowest, candidates: starts.map { start in
                DiagnosisCandidate(
                    cause: .htmlInserted,
                    detail: "HTML was inserted before </body> of the \(leaf.contentType.mediaType) part\(where_(leaf)) (a footer or disclaimer)",
                    mediaType: leaf.contentType.mediaType,
                    footer: DiagnosisBytes.firstLine(base[start..<tag], qp: qp, html: true),
                    pieces: DiagnosisBytes.pieces(from: lowest, total: total, removals: [start..<tag]))
            })
        }
    }

    /// A footer in a base64 text/plain or text/html part: the tool decoded the part, appended
    /// (or inserted before `</body>`) and encoded it again. Each cut of the decoded text is
    /// encoded at the part's current line length and hashed.
    func base64TextFooters(near: Bool) -> [DiagnosisCandidateGroup] {
        var out: [DiagnosisCandidateGroup] = []
        var budget = maxTransformBytes
        for leaf in (textLeaves("plain", base64: true) + textLeaves("html", base64: true)).prefix(Self.maxTextLeaves) {
            let body = leaf.bodyRange
            guard body.count <= budget else { continue }
            budget -= body.count
            let decoded = Base64Lines.decode(leaf.body)
            guard decoded.garbageCount == 0, !decoded.bytes.isEmpty else { continue }
            let text = decoded.bytes
            let width = (base[body].firstIndex(of: 0x0D) ?? body.upperBound) - body.lowerBound
            let trailing = Array(base[body].reversed().prefix { $0 == 0x0D || $0 == 0x0A }.reversed())
            let html = leaf.contentType.subtype == "html"
            var removals: [Range<Int>] = []
            if html {
                guard let tag = DiagnosisBytes.lastOccurrence(ofCaseInsensitive: "</body", in: text, range: 0..<text.count) else { continue }
                let all = DiagnosisBytes.insertionStarts(in: text, from: 0, before: tag,
                                                         limit: near ? Self.nearInsertionStarts : options.maxFooterLines)
                removals = (near ? all : Array(all.dropFirst(Self.nearInsertionStarts))).map { $0..<tag }
            } else {
                let nearCuts = DiagnosisBytes.decodedCuts(in: text, limit: Self.nearFooterLines)
                let cuts = near ? nearCuts
                    : DiagnosisBytes.decodedCuts(in: text, limit: options.maxFooterLines).filter { !nearCuts.contains($0) }
                removals = cuts.map { $0..<text.count }
            }
            removals = removals.filter { DiagnosisBytes.hasText(text[$0]) }
            // The far tier also tries the nearest cuts at the other common line lengths: a tool
            // that encoded the part again may have used its own.
            var widths = removals.map { ($0, width) }
            if !near, let nearest = (html ? nil : DiagnosisBytes.decodedCuts(in: text, limit: Self.nearFooterLines)) {
                for other in [76, 72, 64] where other != width {
                    widths += nearest.filter { DiagnosisBytes.hasText(text[$0...]) }.map { ($0..<text.count, other) }
                }
            }
            guard !widths.isEmpty else { continue }
            out.append(DiagnosisCandidateGroup(prefix: 0..<body.lowerBound, candidates: widths.map { removal, width in
                let kept = Array(text[..<removal.lowerBound]) + text[removal.upperBound...]
                return DiagnosisCandidate(
                    cause: html ? .htmlInserted : .textAppended,
                    detail: (html ? "HTML was inserted before </body> of the base64 " : "text was appended to the base64 ")
                        + "\(leaf.contentType.mediaType) part\(where_(leaf)) (a footer or disclaimer; the part was encoded again)",
                    mediaType: leaf.contentType.mediaType,
                    footer: DiagnosisBytes.firstLine(text[removal], qp: false, html: html),
                    pieces: [.bytes(Base64Lines.encode(kept, lineLength: width) + trailing), .base(body.upperBound..<total)])
            }))
        }
        return out
    }

    /// Text added to the epilogue (after the close delimiter) or to the preamble of a multipart.
    func epiloguesAndPreambles() -> [DiagnosisCandidateGroup] {
        var out: [DiagnosisCandidateGroup] = []
        for node in multiparts {
            guard let multipart = node.multipart else { continue }
            let name = node.contentType.mediaType
            let epilogue = multipart.epilogueRange
            if !epilogue.isEmpty, let close = multipart.closeDelimiterRange {
                var cuts = [epilogue.lowerBound]
                // The line end after the close delimiter may have come with the added text.
                if epilogue.lowerBound - close.lowerBound >= 2, base[epilogue.lowerBound - 2] == 0x0D {
                    cuts.append(epilogue.lowerBound - 2)
                }
                cuts += lineCuts(atLineEnds: DiagnosisBytes.lineEnds(in: base, range: epilogue, limit: Self.nearFooterLines),
                             below: epilogue.upperBound)
                cuts = cuts.filter { DiagnosisBytes.hasText(base[$0..<epilogue.upperBound]) }
                let lowest = cuts.min() ?? epilogue.lowerBound
                if !cuts.isEmpty { out.append(DiagnosisCandidateGroup(prefix: 0..<lowest, candidates: cuts.map { cut in
                    DiagnosisCandidate(
                        cause: .textAppended,
                        detail: "text was added after the close delimiter of the \(name)\(where_(node)), in its epilogue",
                        mediaType: "the epilogue of \(name)",
                        footer: DiagnosisBytes.firstLine(base[cut..<epilogue.upperBound], qp: false),
                        pieces: DiagnosisBytes.pieces(from: lowest, total: total, removals: [cut..<epilogue.upperBound]))
                })) }
            }
            let preamble = multipart.preambleRange
            if !preamble.isEmpty {
                // Text at the end of the preamble, or a preamble that was not there (with the
                // line end that then came before the first delimiter).
                var removals = lineCuts(atLineEnds: DiagnosisBytes.lineEnds(in: base, range: preamble, limit: Self.nearFooterLines),
                                    below: preamble.upperBound).map { $0..<preamble.upperBound }
                removals.append(preamble)
                if preamble.upperBound + 2 <= total, base[preamble.upperBound] == 0x0D {
                    removals.append(preamble.lowerBound..<(preamble.upperBound + 2))
                }
                removals = removals.filter { DiagnosisBytes.hasText(base[$0]) }
                let lowest = removals.map(\.lowerBound).min() ?? preamble.lowerBound
                if !removals.isEmpty { out.append(DiagnosisCandidateGroup(prefix: 0..<lowest, candidates: removals.map { removal in
                    DiagnosisCandidate(
                        cause: .textAppended,
                        detail: "text was added to the preamble of the \(name)\(where_(node))",
                        mediaType: "the preamble of \(name)",
                        footer: DiagnosisBytes.firstLine(base[removal], qp: false),
                        pieces: DiagnosisBytes.pieces(from: lowest, total: total, removals: [removal]))
                })) }
            }
        }
        return out
    }

    /// format=flowed text (RFC 3676) whose soft line breaks (a space before the line end) were
    /// stripped with the other trailing white space: the space is put back at the end of each
    /// line that another line of the same paragraph follows (and on `--` separators), for all such
    /// lines and for those of at least 40 or 60 bytes (hard breaks are usually short lines).
    /// Tried only when no line of the part still ends with a space.
    func flowedWhitespace() -> [DiagnosisCandidateGroup] {
        var out: [DiagnosisCandidateGroup] = []
        var budget = maxTransformBytes
        for leaf in textLeaves("plain", base64: false)
        where leaf.contentType.parameter("format")?.lowercased() == "flowed" && leaf.transferEncoding != .quotedPrintable {
            let body = leaf.bodyRange
            guard body.count <= budget else { continue }
            budget -= body.count
            var lines: [Range<Int>] = []
            var start = body.lowerBound
            var index = body.lowerBound
            while index < body.upperBound {
                if base[index] == 0x0D, index + 1 < body.upperBound, base[index + 1] == 0x0A {
                    lines.append(start..<index)
                    index += 2
                    start = index
                } else {
                    index += 1
                }
            }
            if start < body.upperBound { lines.append(start..<body.upperBound) }
            guard lines.count >= 2, !lines.contains(where: { !$0.isEmpty && base[$0.upperBound - 1] == 0x20 }) else { continue }
            func isSeparator(_ line: Range<Int>) -> Bool { line.count == 2 && base[line.lowerBound] == 0x2D && base[line.lowerBound + 1] == 0x2D }
            func quoteDepth(_ line: Range<Int>) -> Int { base[line].prefix { $0 == 0x3E }.count }
            var seen: Set<[Int]> = []
            var candidates: [DiagnosisCandidate] = []
            for threshold in [1, 40, 60] {
                var positions: [Int] = []
                for (i, line) in lines.enumerated() {
                    if isSeparator(line) { positions.append(line.upperBound); continue }
                    guard i + 1 < lines.count, line.count >= threshold else { continue }
                    let next = lines[i + 1]
                    if !next.isEmpty, !isSeparator(next), quoteDepth(next) == quoteDepth(line) { positions.append(line.upperBound) }
                }
                guard !positions.isEmpty, seen.insert(positions).inserted else { continue }
                candidates.append(DiagnosisCandidate(
                    cause: .trailingWhitespaceStripped,
                    detail: "the trailing spaces of the soft line breaks of the format=flowed \(leaf.contentType.mediaType) "
                        + "part\(where_(leaf)) were stripped (RFC 3676 §4.2; RFC 8551 §3.1.4)",
                    mediaType: leaf.contentType.mediaType,
                    pieces: DiagnosisBytes.pieces(from: body.lowerBound, total: total, insertions: positions.map { ($0, [0x20]) })))
            }
            if !candidates.isEmpty { out.append(DiagnosisCandidateGroup(prefix: 0..<body.lowerBound, candidates: candidates)) }
        }
        return out
    }

    /// A blank line removed before (or added before) the boundaries inside the signed entity:
    /// all of them at once (a rebuilder does it everywhere), then each alone.
    func innerBlankLines() -> [DiagnosisCandidateGroup] {
        var sites: [Int] = []
        for node in multiparts {
            guard let multipart = node.multipart else { continue }
            for range in multipart.delimiterRanges + (multipart.closeDelimiterRange.map { [$0] } ?? [])
            where range.lowerBound + 2 <= total && base[range.lowerBound] == 0x0D && base[range.lowerBound + 1] == 0x0A {
                sites.append(range.lowerBound)
            }
        }
        sites = Array(Set(sites)).sorted().prefix(16).map { $0 }
        guard let first = sites.first else { return [] }
        let blank = sites.filter { $0 >= 2 && base[$0 - 2] == 0x0D && base[$0 - 1] == 0x0A }
        var out: [DiagnosisCandidateGroup] = []
        out.append(DiagnosisCandidateGroup(prefix: 0..<first, candidates: [DiagnosisCandidate(
            cause: .blankLineBeforeBoundary(.removed),
            detail: "the blank line before each boundary inside the signed part was removed",
            pieces: DiagnosisBytes.pieces(from: first, total: total, insertions: sites.map { ($0, DiagnosisBytes.crlf) }))]))
        if let firstBlank = blank.first {
            out.append(DiagnosisCandidateGroup(prefix: 0..<(firstBlank - 2), candidates: [DiagnosisCandidate(
                cause: .blankLineBeforeBoundary(.added),
                detail: "a blank line was added before each boundary inside the signed part",
                pieces: DiagnosisBytes.pieces(from: firstBlank - 2, total: total, removals: blank.map { ($0 - 2)..<$0 }))]))
        }
        guard sites.count > 1 || !blank.isEmpty else { return out }
        for site in sites where sites.count > 1 {
            out.append(DiagnosisCandidateGroup(prefix: 0..<site, candidates: [DiagnosisCandidate(
                cause: .blankLineBeforeBoundary(.removed),
                detail: "a blank line before a boundary inside the signed part was removed",
                pieces: [.bytes(DiagnosisBytes.crlf), .base(site..<total)])]))
        }
        for site in blank where blank.count > 1 {
            out.append(DiagnosisCandidateGroup(prefix: 0..<(site - 2), candidates: [DiagnosisCandidate(
                cause: .blankLineBeforeBoundary(.added),
                detail: "a blank line was added before a boundary inside the signed part",
                pieces: [.base(site..<total)])]))
        }
        return out
    }
}

extension DiagnosisBytes {
    /// Whether `bytes` hold more than white space and line ends: added text without any is a
    /// blank line (`blankLineBeforeBoundary`), not a footer.
    static func hasText<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        bytes.contains { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D && $0 != 0x0A }
    }

    /// Offsets in `bytes` where an insertion before `end` may have started, nearest first: each
    /// tag start and line end within 8 KB.
    static func insertionStarts(in bytes: [UInt8], from lower: Int, before end: Int, limit: Int) -> [Int] {
        var starts: [Int] = []
        var index = end - 1
        let floor = max(lower, end - 8_192)
        while index >= floor, starts.count < limit {
            let byte = bytes[index]
            if byte == 0x3C || byte == 0x0D || (byte == 0x0A && index + 1 < end && index > floor) {
                starts.append(byte == 0x0A ? index + 1 : index)
            }
            index -= 1
        }
        return starts.filter { $0 < end }
    }

    /// Cut points in decoded text for a footer at its end: after and before each of the last
    /// `limit` line ends (CRLF or a bare LF), nearest first; only the last 64 KB are searched.
    static func decodedCuts(in bytes: [UInt8], limit: Int) -> [Int] {
        var out: [Int] = []
        var found = 0
        var index = bytes.count - 1
        let floor = max(0, bytes.count - 65_536)
        while index >= floor, found < limit {
            if bytes[index] == 0x0A {
                let start = index > 0 && bytes[index - 1] == 0x0D ? index - 1 : index
                if index + 1 < bytes.count { out.append(index + 1) }
                out.append(start)
                found += 1
                index = start
            }
            index -= 1
        }
        return out
    }
}
