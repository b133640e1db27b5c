// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME

/// What a signature over one part of a message leaves uncovered: the signed part and every
/// unsigned part beside it on the way up to the root (a mailing list's header and footer, an
/// attacker's text next to a genuine signed mail, an unsigned HTML alternative).
///
/// A signature counts for the message only when the signed entity is the message itself (or the
/// message under layers that show nothing of their own, such as an opaque signed-data). Mail
/// clients show a signature only then ("Johnny, You Are Fired!", USENIX Security 2019); a
/// gateway verdict must not be weaker.
public struct PartialSignature: Sendable, Equatable {
    /// One unsigned part: its IMAP section, media type, and where it stands next to the signed one.
    public struct UnsignedPart: Sendable, Equatable {
        public enum Position: String, Sendable, Equatable {
            /// In a multipart/alternative with the signed part: a client may show it instead.
            case alternative
            /// Before the signed part (a list header, or an attacker's text).
            case before
            /// After the signed part (a list footer added after signing).
            case after
        }
        public var section: String
        public var mediaType: String
        public var position: Position
        /// The first non-blank line of a text part (for `diagnose`), at most 72 characters.
        public var firstLine: String?
    }

    /// The section of the signed entity (the multipart/signed or application/pkcs7-mime part).
    public var signedSection: String
    /// The unsigned parts, in document order.
    public var unsigned: [UnsignedPart]

    /// "only part 2 is signed; unsigned content: part 1 (text/plain) before it, part 3
    /// (text/plain) after it".
    public var reason: String {
        "only part \(signedSection) is signed; unsigned content: " + unsigned.map { part in
            let position: String
            switch part.position {
            case .alternative: position = "as an alternative to it"
            case .before: position = "before it"
            case .after: position = "after it"
            }
            return "part \(part.section) (\(part.mediaType)) \(position)"
        }.joined(separator: ", ")
    }

    /// The unsigned parts after the signed one in a multipart/mixed: what a mailing list adds
    /// as its footer after the mail was signed.
    public var footers: [UnsignedPart] { unsigned.filter { $0.position == .after } }

    /// The partial signature of `signed` in the tree `root`, or nil when `signed` covers the
    /// message: it is the root, or nothing beside it on the way up shows anything.
    static func of(_ signed: MIMEEntity, in root: MIMEEntity) -> PartialSignature? {
        guard !signed.section.isEmpty else { return nil }
        var unsigned: [UnsignedPart] = []
        var node = root
        while node.section != signed.section {
            let parts = node.parts
            guard let index = parts.firstIndex(where: { signed.section == $0.section || signed.section.hasPrefix($0.section + ".") })
            else { break }
            let alternative = node.contentType.mediaType == "multipart/alternative"
            for (i, part) in parts.enumerated() where i != index {
                let position: UnsignedPart.Position = alternative ? .alternative : (i < index ? .before : .after)
                unsigned.append(UnsignedPart(section: part.section, mediaType: part.contentType.mediaType,
                                             position: position, firstLine: firstLine(of: part)))
            }
            node = parts[index]
        }
        guard !unsigned.isEmpty else { return nil }
        unsigned.sort { Self.sectionOrder($0.section, $1.section) }
        return PartialSignature(signedSection: signed.section, unsigned: unsigned)
    }

    static func firstLine(of entity: MIMEEntity) -> String? {
        guard entity.contentType.mediaType.hasPrefix("text/"), case .leaf = entity.content else { return nil }
        let text = String(decoding: entity.decodedBody.prefix(4_096), as: UTF8.self)
        // A separator ("-- " before a list footer, "____") says nothing: the first line with words does.
        let lines = text.split(whereSeparator: \.isNewline)
        guard let line = lines.first(where: { $0.contains { $0.isLetter || $0.isNumber } })
            ?? lines.first(where: { !$0.allSatisfy { $0 == " " || $0 == "\t" } }) else { return nil }
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        return trimmed.count > 72 ? String(trimmed.prefix(72)) + "..." : trimmed
    }

    /// Document order of IMAP sections ("2" before "2.1" before "3", "10" after "9").
    static func sectionOrder(_ a: String, _ b: String) -> Bool {
        let x = a.split(separator: ".").map { Int($0) ?? 0 }
        let y = b.split(separator: ".").map { Int($0) ?? 0 }
        return x.lexicographicallyPrecedes(y)
    }
}

/// What to make of a valid signature over one part of a message (`PartialSignatures`).
public enum PartialSignatureRule: String, Sendable, Equatable, CaseIterable {
    /// `smime=policy (only part N is signed; unsigned content: ...)` (the default).
    case policy
    /// Pass, as a signature over the whole message (for sites that accept list-wrapped mail).
    case pass
}
