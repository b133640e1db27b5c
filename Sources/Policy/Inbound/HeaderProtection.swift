// SPDX-License-Identifier: Apache-2.0
import MIME
import SMIME

/// Header protection (RFC 9788) on the receiving side: the protected header fields a signed
/// message carries, compared with the outer ones, which no signature covers.
///
/// - From: the protected From is what the signer vouches for. When the outer From names other
///   addresses (or the protected header has none) the verdict is `policy`: the reader would see
///   a sender the signature does not vouch for.
/// - To, Cc, Subject, Date: a difference is reported in the Authentication-Results comment
///   (lists rewrite Subjects; that is no forgery, but the reader should know), and a Subject tag
///   goes on the protected Subject, so the reader sees what was signed.
/// - A field the protected header does not have is not protected and is not compared.
enum HeaderProtection {
    struct Comparison: Equatable {
        /// Why the From fields do not match, or nil when they do.
        var fromMismatch: String?
        /// The names of the other compared fields that differ, in the order compared.
        var changed: [String]
        /// The protected Subject value (as written) when it differs from the outer one.
        var protectedSubject: String?
    }

    static func compare(_ protected: ProtectedHeaders, outer: [HeaderField]) -> Comparison {
        var result = Comparison(fromMismatch: nil, changed: [], protectedSubject: nil)
        let innerFrom = addresses(protected.fields, "From")
        let outerFrom = addresses(outer, "From")
        if innerFrom == nil || innerFrom?.isEmpty == true {
            result.fromMismatch = "the signed header (\(protected.form.rawValue)) has no From address"
        } else if Set(innerFrom ?? []) != Set(outerFrom ?? []) {
            result.fromMismatch = "the From field outside the signature (\((outerFrom ?? []).joined(separator: ", "))) "
                + "differs from the signed From (\((innerFrom ?? []).joined(separator: ", ")))"
        }
        for name in ["To", "Cc"] {
            guard let inner = addresses(protected.fields, name) else { continue }
            if Set(inner) != Set(addresses(outer, name) ?? []) { result.changed.append(name) }
        }
        if let inner = protected.fields.first(named: "Subject") {
            if displayed(inner.value) != displayed(outer.first(named: "Subject")?.value ?? "") {
                result.changed.append("Subject")
                result.protectedSubject = inner.value
            }
        }
        if let inner = protected.fields.first(named: "Date"),
           displayed(inner.value) != displayed(outer.first(named: "Date")?.value ?? "") {
            result.changed.append("Date")
        }
        return result
    }

    /// The comment for changed fields: "signed Subject differs from the outer one".
    static func note(_ changed: [String]) -> String? {
        guard !changed.isEmpty else { return nil }
        let list = changed.count == 1 ? changed[0]
            : changed.dropLast().joined(separator: ", ") + " and " + (changed.last ?? "")
        return "header protection: the outer \(list) differ\(changed.count == 1 ? "s" : "") from the signed one"
            + (changed.count == 1 ? "" : "s")
    }

    /// Every address of the fields `name` (normalised), nil when there is no such field.
    static func addresses(_ fields: [HeaderField], _ name: String) -> [String]? {
        let found = fields.all(named: name)
        guard !found.isEmpty else { return nil }
        return found.flatMap { (try? AddressList.mailboxes(in: $0.value))?.map(\.normalisedAddress) ?? [] }
    }

    /// What a reader sees: encoded words decoded, folds and runs of blanks made one space, trimmed.
    static func displayed(_ value: String) -> String {
        EncodedWord.decode(value.replacingLineBreaks())
            .split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }
}
