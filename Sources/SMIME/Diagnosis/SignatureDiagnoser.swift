// SPDX-License-Identifier: Apache-2.0
import MIME

/// Finds out what broke a multipart/signed signature whose digest does not match.
///
/// The messageDigest signed attribute is the oracle: candidate reconstructions of the original
/// signed bytes (LF line ends, a blank line restored or removed, quoted-printable decoded back to
/// 8bit, base64 re-wrapped, a footer cut off, an appended part removed, header fields refolded,
/// ...) are hashed with the SignerInfo's digest algorithm (OpenSSL `EVP_Digest*`) and compared.
/// The first match is proof (`confirmed`). Without a match the content is searched for traces
/// (`likely`), else the cause is `unknown`.
///
/// Only multipart/signed is diagnosed: opaque signed-data carries its content inside the CMS
/// structure, which a transport cannot alter without breaking the structure itself.
///
/// The work is bounded by `DiagnosisOptions`: a fixed number of digest computations and a time
/// budget (`ContinuousClock`); past either the cause is `unknown` (or `likely`) and `detail` says
/// why. Never throws, never crashes on hostile input. Safe to use from many threads (a value).
public struct SignatureDiagnoser: Sendable {
    public var options: DiagnosisOptions
    /// Bounds for parsing the signed content.
    public var limits: MIMELimits
    /// At most this many SignerInfos are read.
    public var maxSigners: Int
    /// Whole-content rewrites written in Swift (quoted-printable decoding, scanning for lines)
    /// are skipped for signed content larger than this; the cheaper candidates are still tried.
    public var maxTransformBytes: Int

    public init(options: DiagnosisOptions = DiagnosisOptions(), limits: MIMELimits = MIMELimits(maxDepth: 32, maxParts: 1_000),
                maxSigners: Int = 8, maxTransformBytes: Int = 4 << 20) {
        self.options = options
        self.limits = limits
        self.maxSigners = maxSigners
        self.maxTransformBytes = maxTransformBytes
    }

    /// Diagnoses a digest mismatch.
    ///
    /// - Parameters:
    ///   - signedContent: part 1 of the multipart/signed exactly as received (header, blank line,
    ///     body; any line ends; without the CRLF that belongs to the next delimiter).
    ///   - signature: the DER SignedData of part 2 (the decoded `.p7s`).
    ///   - canonicalChecked: the canonical CRLF form is known not to match (the verifier hashed
    ///     it), so it is not tried again.
    public func diagnose(signedContent: [UInt8], signature: [UInt8], canonicalChecked: Bool = true) -> SignatureDiagnosis {
        let oracle = DiagnosisOracle(signatureDER: signature, maxSigners: maxSigners,
                                     maxComputations: options.maxDigestComputations, timeBudget: options.timeBudget)
        if let problem = oracle.problem {
            return SignatureDiagnosis(cause: .unknown, confidence: .unknown, detail: "cannot diagnose: \(problem)")
        }
        let base = LineEnds.isCRLF(signedContent) ? signedContent : LineEnds.toCRLF(signedContent)
        let entity = try? MIMEParser.parse(message: base, limits: limits)
        let candidates = DiagnosisCandidates(raw: signedContent, base: base, entity: entity, options: options,
                                             canonicalChecked: canonicalChecked, maxTransformBytes: maxTransformBytes,
                                             limits: limits)
        // Cheap and common first; each generator runs only when the ones before found nothing.
        // Footers are tried near the end of every text part first, far later; two causes at
        // once come after the single causes they build on.
        let generators: [() -> [DiagnosisCandidateGroup]] = [
            candidates.lineEnds, candidates.blankLine, candidates.signatureSeparator, candidates.flowedWhitespace,
            candidates.quotedPrintableDowngrade,
            { candidates.textFooters(near: true) }, { candidates.base64TextFooters(near: true) },
            { candidates.htmlInsertions(near: true) }, candidates.textAndHTMLFooters,
            candidates.appendedParts, candidates.epiloguesAndPreambles,
            candidates.whitespacePairs, candidates.eightBitPairs,
            candidates.base64Rewrap, candidates.quotedPrintableReencode, candidates.headerFolding,
            candidates.innerHeaderFolding, candidates.fromEscaping, candidates.innerBlankLines,
            { candidates.textFooters(near: false) }, { candidates.base64TextFooters(near: false) },
            { candidates.htmlInsertions(near: false) },
            candidates.lineEndPairs,
        ]
        var stopped: String?
        var tried = 0
        search: for generate in generators {
            do {
                try oracle.checkBudget()
            } catch {
                stopped = Self.words(error)
                break
            }
            for group in generate() {
                do {
                    if let index = try oracle.firstMatch(in: group, base: group.base ?? base) {
                        let found = group.candidates[index]
                        return SignatureDiagnosis(cause: found.cause, confidence: .confirmed,
                                                  detail: found.detail + " (a reconstruction matches the signed digest)",
                                                  footer: found.footer, mediaType: found.mediaType,
                                                  digestComputations: oracle.computations,
                                                  also: found.second, secondMediaType: found.secondMediaType)
                    }
                    tried += group.candidates.count
                } catch {
                    stopped = Self.words(error)
                    break search
                }
            }
        }
        let why = stopped.map { "stopped after \(oracle.computations) digest computations: \($0)" }
            ?? "none of \(oracle.computations) digest computations over reconstructions matched the signed digest"
        if var likely = DiagnosisEvidence.likely(raw: signedContent, base: base, entity: entity) {
            likely.detail += "; \(why)"
            likely.digestComputations = oracle.computations
            return likely
        }
        return SignatureDiagnosis(cause: .unknown, confidence: .unknown,
                                  detail: "the content was changed after signing in an unrecognised way; \(why)",
                                  digestComputations: oracle.computations)
    }

    private static func words(_ error: any Error) -> String {
        switch error {
        case DiagnosisStop.digestLimit(let limit): return "the limit of \(limit) digest computations was reached"
        case DiagnosisStop.timeBudget(let budget): return "the time budget of \(budget) ran out"
        default: return "\(error)"
        }
    }
}
