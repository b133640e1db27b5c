// SPDX-License-Identifier: Apache-2.0
import MIME

/// Traces of a known cause when no reconstruction matched: the basis of a `likely` diagnosis.
/// Only signs a tool leaves behind count; a single changed byte leaves none, so it stays unknown.
enum DiagnosisEvidence {
    /// Words typical of disclaimers and list footers (lower case).
    static let footerWords = [
        "disclaimer", "confidential", "intended recipient", "intended solely", "intended only",
        "privileged", "virus", "scanned by", "unsubscribe", "mailing list", "this e-mail", "this email",
        "this message and any attachments", "legally", "sent from my",
    ]

    static func likely(raw: [UInt8], base: [UInt8], entity: MIMEEntity?) -> SignatureDiagnosis? {
        guard let entity else { return nil }
        let leaves = entity.allEntities.filter { if case .leaf = $0.content { return true } else { return false } }.prefix(1_000)
        // A converter's own marker (Sendmail, reformime): "X-MIME-Autoconverted: from 8bit to quoted-printable by ...".
        for leaf in leaves {
            if let marker = leaf.fields.first(named: "X-MIME-Autoconverted") {
                return SignatureDiagnosis(
                    cause: .transferEncodingChanged(.eightBitToQuotedPrintable), confidence: .likely,
                    detail: "the \(leaf.contentType.mediaType) part says it was converted:"
                        + " X-MIME-Autoconverted:\(marker.unfoldedValue.prefix(120))",
                    mediaType: leaf.contentType.mediaType)
            }
        }
        // Disclaimer words in the last lines of a text part.
        for leaf in leaves.reversed() where leaf.contentType.type == "text" && leaf.transferEncoding != .base64 {
            let tail = Array(leaf.body.suffix(2_048))
            let text = leaf.transferEncoding == .quotedPrintable ? QuotedPrintable.decode(tail) : tail
            let lines = String(decoding: text, as: UTF8.self).split(whereSeparator: \.isNewline).suffix(12)
            let isHTML = leaf.contentType.subtype == "html"
            for line in lines {
                let lowered = (isHTML ? DiagnosisBytes.stripTags(String(line)) : String(line)).lowercased()
                if let word = footerWords.first(where: { lowered.contains($0) }) {
                    let shown = DiagnosisBytes.firstLine(Array(line.utf8), qp: false, html: isHTML)
                    return SignatureDiagnosis(
                        cause: isHTML ? .htmlInserted : .textAppended, confidence: .likely,
                        detail: "the end of the \(leaf.contentType.mediaType) part reads like a footer (\"\(word)\")",
                        footer: shown, mediaType: leaf.contentType.mediaType)
                }
            }
        }
        return nil
    }
}
