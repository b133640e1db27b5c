// SPDX-License-Identifier: Apache-2.0
import MIME

/// Two causes at once: a change with few possible reconstructions (trailing white space,
/// 8bit→quoted-printable, a signer that hashed LF line ends) is undone first, and the other
/// generators then run over that one reconstruction. This stays linear: one view per first
/// cause, each followed by the near-tier candidates of the second causes, never all
/// combinations of all candidates.
extension DiagnosisCandidates {
    /// The bytes a candidate stands for (prefix and pieces), in CRLF form.
    func materialize(_ group: DiagnosisCandidateGroup, _ candidate: DiagnosisCandidate) -> [UInt8] {
        var out = Array(base[group.prefix])
        for piece in candidate.pieces {
            switch piece {
            case .base(let range): out += base[range]
            case .bytes(let bytes): out += bytes
            case .lf(let range): out += LineEnds.toLF(base[range])
            }
        }
        return out
    }

    /// The candidates over `bytes` (a reconstruction), parsed again.
    func view(_ bytes: [UInt8]) -> DiagnosisCandidates {
        DiagnosisCandidates(raw: bytes, base: bytes, entity: try? MIMEParser.parse(message: bytes, limits: limits),
                            options: options, canonicalChecked: true, maxTransformBytes: maxTransformBytes, limits: limits)
    }

    /// The candidates a second cause is looked for with, near tier only.
    private func secondCauses(encodings: Bool) -> [DiagnosisCandidateGroup] {
        var out = textFooters(near: true) + base64TextFooters(near: true) + htmlInsertions(near: true)
            + blankLine() + appendedParts() + epiloguesAndPreambles()
        if encodings { out += base64Rewrap() + quotedPrintableReencode() }
        return out
    }

    /// `groups` (found over `view`) marked as also undoing `first`. A footer is named first.
    private func combined(_ groups: [DiagnosisCandidateGroup], with first: DiagnosisCandidate, over view: [UInt8]?,
                          lf: Bool = false) -> [DiagnosisCandidateGroup] {
        groups.map { group in
            var group = group
            group.base = view
            group.lf = lf
            group.candidates = group.candidates.map { candidate in
                var both = candidate
                switch candidate.cause {
                case .textAppended, .htmlInserted, .partAppended:
                    both.second = first.cause
                    both.secondMediaType = first.mediaType
                default:
                    both.cause = first.cause
                    both.mediaType = first.mediaType
                    both.second = candidate.cause
                    both.secondMediaType = candidate.mediaType
                }
                both.detail = candidate.detail + "; and " + first.detail
                return both
            }
            return group
        }
    }

    /// Trailing white space stripped (the `-- ` separator) and another change.
    func whitespacePairs() -> [DiagnosisCandidateGroup] {
        guard let group = signatureSeparator().first, let first = group.candidates.first else { return [] }
        let restored = materialize(group, first)
        return combined(view(restored).secondCauses(encodings: true), with: first, over: restored)
    }

    /// 8bit parts converted to quoted-printable and another change (base64 re-wrapped, a footer).
    func eightBitPairs() -> [DiagnosisCandidateGroup] {
        guard let group = quotedPrintableDowngrade().first, let first = group.candidates.first else { return [] }
        let restored = materialize(group, first)
        let again = view(restored)
        return combined(again.secondCauses(encodings: true) + again.signatureSeparator(), with: first, over: restored)
    }

    /// A signer that hashed LF line ends, and another change in transit.
    func lineEndPairs() -> [DiagnosisCandidateGroup] {
        guard base.contains(0x0D) else { return [] }
        let first = DiagnosisCandidate(
            cause: .lineEndsChanged,
            detail: "the signer hashed the content with LF line ends (it did not canonicalise to CRLF, RFC 8551 §3.1.1)",
            pieces: [])
        return combined(secondCauses(encodings: false) + signatureSeparator(), with: first, over: nil, lf: true)
    }
}
