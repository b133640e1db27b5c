// SPDX-License-Identifier: Apache-2.0
import MIME

/// A message's top-level `multipart/signed` taken apart: what the message becomes when its
/// signature layer is removed. Part 1 (the signed content) becomes the message content: its
/// `Content-*` fields replace the top-level ones, its body becomes the body, and the signature
/// part is dropped.
///
/// Only `Content-*` fields of part 1 move up: any other field in a part header (protected
/// headers some clients copy there, e.g. Subject) would duplicate the outer one.
struct SignatureLayer: Sendable {
    /// The top-level `Content-*` fields to delete, as (name, 1-based occurrence) of the message.
    let outerContentFields: [(name: String, occurrence: Int)]
    /// Part 1's `Content-*` fields, values with their folds written "\n" (how the MTA wants them).
    let innerContentFields: [HeaderField]
    /// Part 1's body (CRLF), without the line end that belongs to the next delimiter.
    let innerBody: [UInt8]

    /// The layer of a top-level `multipart/signed` with exactly two parts; nil for anything else
    /// (opaque `application/pkcs7-mime`, a malformed multipart/signed), which cannot be unwrapped.
    static func unwrap(fields: [HeaderField], body: [UInt8], limits: MIMELimits = MIMELimits()) -> SignatureLayer? {
        guard let root = try? MIMEParser.parse(fields: fields, body: body, limits: limits),
              root.contentType.mediaType == "multipart/signed",
              let multipart = root.multipart, multipart.parts.count == 2
        else { return nil }
        let content = multipart.parts[0]
        let inner = content.fields
            .filter { isContentField($0.name) }
            .map { HeaderField(name: $0.name, value: $0.value.replacingOccurrences(of: "\r\n", with: "\n")) }
        return SignatureLayer(
            outerContentFields: contentFieldOccurrences(fields), innerContentFields: inner, innerBody: Array(content.body))
    }

    /// The message's header once the layer is gone: the outer fields other than `Content-*` in
    /// order, then part 1's `Content-*` fields (the order the edits produce).
    func unwrappedFields(_ fields: [HeaderField]) -> [HeaderField] {
        fields.filter { !Self.isContentField($0.name) } + innerContentFields
    }

    /// The edits that remove the layer: delete the outer `Content-*` fields (last first), add
    /// part 1's (and `MIME-Version` when the message has none and part 1 has Content-* fields),
    /// replace the body with part 1's.
    func removalEdits(_ fields: [HeaderField]) -> [MessageEdit] {
        var edits: [MessageEdit] = outerContentFields.reversed().map { .deleteField(name: $0.name, occurrence: $0.occurrence) }
        let hasVersion = fields.contains { $0.hasName("MIME-Version") }
        if !hasVersion && !innerContentFields.isEmpty {
            edits.append(.addField(name: "MIME-Version", value: " 1.0"))
        }
        edits += innerContentFields.map { .addField(name: $0.name, value: $0.value) }
        edits.append(.replaceBody(innerBody))
        return edits
    }

    static func isContentField(_ name: String) -> Bool {
        name.lowercased().hasPrefix("content-")
    }

    /// Every `Content-*` field of `fields` as (name, occurrence of that name), in order.
    static func contentFieldOccurrences(_ fields: [HeaderField]) -> [(name: String, occurrence: Int)] {
        var seen: [String: Int] = [:]
        var out: [(name: String, occurrence: Int)] = []
        for field in fields {
            let key = field.name.lowercased()
            seen[key, default: 0] += 1
            if isContentField(field.name), let n = seen[key] { out.append((field.name, n)) }
        }
        return out
    }
}
