// SPDX-License-Identifier: Apache-2.0
/// The MIME entity to sign: the top-level Content-* fields and the body, made 7-bit and canonical
/// (CRLF) per RFC 8551 §3.1.
///
/// Conversion rules (applied to every leaf, recursively through multiparts and `message/rfc822`):
/// - A leaf whose bytes are 7-bit (no NUL), with no line over 998 octets, no line starting `From `,
///   no trailing white space and only CRLF line ends is kept byte for byte (ISO-2022-JP included);
///   a `8bit`/`binary` label on such a leaf is rewritten to `7bit`.
/// - Otherwise a `text/*` leaf becomes quoted-printable (`QuotedPrintable.encode`, lines ≤ 76,
///   `=46rom`, `=20`). A non-text 7-bit leaf whose only problems are `From `, trailing white space
///   or bare line ends also becomes quoted-printable; any other non-text leaf becomes base64.
/// - Leaves already in quoted-printable or base64 are kept unless they break the rules above, in
///   which case they are decoded (tolerantly) and re-encoded in the same encoding.
/// - Only the Content-Transfer-Encoding field of a converted leaf changes; other fields are copied
///   byte for byte with folds written as CRLF; a line break that is not a fold (a stray CR) is
///   written as a space, with a line in `warnings`, so that it cannot end the header. Charsets never change. A charset is added only where
///   none is stated on a text leaf that turns out 8-bit: `utf-8` when the bytes are valid UTF-8,
///   else `unknown-8bit` (RFC 1428). A top level without Content-Type gets
///   `Content-Type: text/plain; charset=...` (`us-ascii` when 7-bit).
/// - Multiparts keep boundaries, preamble, epilogue and structure; a multipart or
///   `message/rfc822` labelled `8bit`/`binary` is relabelled `7bit`. Delimiter lines lose transport
///   padding, and preamble and epilogue lose trailing white space (neither is displayed, and
///   gateways strip it). A missing close-delimiter is not added.
/// - Header fields with 8-bit bytes: the unstructured ones (Subject, Comments, Content-Description)
///   are RFC 2047-encoded (`utf-8`, or `unknown-8bit` when not UTF-8); structured ones (addresses,
///   parameters) cannot be encoded without changing their meaning and are kept as they are, with a
///   line in `warnings` (MTAs do not rewrite header bytes, so the signature survives 8BITMIME and
///   SMTPUTF8 transport). The same applies to 8-bit bytes in a preamble or epilogue.
/// - An encapsulated message whose body had to gain Content-* fields also gains `MIME-Version: 1.0`.
/// - Malformed MIME that cannot be made 7-bit without changing its meaning (an 8-bit multipart
///   whose boundary is missing, an unknown transfer encoding over 8-bit data) throws
///   `MIMEError.cannotMake7Bit`; limits throw the `MIMELimits` errors.
public struct SignableEntity: Sendable {
    /// The entity: Content-* fields, a blank line, the body; CRLF line ends.
    public let bytes: [UInt8]
    /// Indexes into the `fields` given to `make` of the fields now inside `bytes`: every field whose
    /// name starts with `Content-` (MIME-Version stays outside). The caller deletes them outside.
    public let movedFieldIndexes: [Int]
    /// Things that stayed non-7-bit (8-bit structured header fields, preamble/epilogue), for the log.
    public let warnings: [String]

    /// Builds the entity to sign from the top-level header fields and the body (CRLF).
    public static func make(fields: [HeaderField], body: [UInt8], limits: MIMELimits = MIMELimits()) throws -> SignableEntity {
        let tree = try MIMEParser.parse(fields: fields, body: body, limits: limits)
        var moved = [Int]()
        var movedFields = [HeaderField]()
        for (index, field) in fields.enumerated() where field.name.lowercased().hasPrefix("content-") {
            moved.append(index)
            movedFields.append(field)
        }
        var converter = SevenBitConverter()
        var out = [UInt8]()
        out.reserveCapacity(body.count + body.count / 3 + 256)
        try converter.emit(tree, fields: movedFields, into: &out)
        return SignableEntity(bytes: out, movedFieldIndexes: moved, warnings: converter.warnings)
    }

    /// True when the top-level Content-Type already makes the message S/MIME: `multipart/signed`,
    /// `application/pkcs7-mime` or `application/x-pkcs7-mime` (signed or encrypted), or
    /// `application/octet-stream` named `*.p7m` (RFC 8551 §3.10). Such a message must not be signed again.
    public static func isAlreadySigned(fields: [HeaderField]) -> Bool {
        guard let f = fields.first(named: "Content-Type"), mayNameSMIME(f.value),
              let ct = ContentType(parsing: f.value) else { return false }
        switch ct.mediaType {
        case "multipart/signed", "application/pkcs7-mime", "application/x-pkcs7-mime":
            return true
        case "application/octet-stream":
            let name = ct.parameter("name")
                ?? fields.first(named: "Content-Disposition").flatMap { ContentDisposition(parsing: $0.value)?.filename }
            return name?.lowercased().hasSuffix(".p7m") ?? false
        default:
            return false
        }
    }

    /// False when `value` cannot name any of the types above: their subtypes are tokens, which
    /// appear literally (comments may only stand between tokens), and each contains "signed",
    /// "pkcs7" or "octet" in any case. Spares the full parse for the usual text/plain or
    /// multipart/mixed message.
    static func mayNameSMIME(_ value: String) -> Bool {
        let lower = Array(value.utf8).map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }
        return ByteSearch.contains(lower, Array("signed".utf8)) || ByteSearch.contains(lower, Array("pkcs7".utf8))
            || ByteSearch.contains(lower, Array("octet".utf8))
    }
}
