// SPDX-License-Identifier: Apache-2.0
/// Decides in one streaming pass, without holding the body, whether `SignableEntity.make` would
/// keep a body byte for byte: then the entity to sign is `SignableEntity.make(fields:body: [])`
/// (the converted top-level header and the blank line) followed by the body as it is, and a
/// large spooled body can be signed and written back from its file.
///
/// The test is conservative (a `false` only means "use the in-memory path"): every line ends in
/// CRLF, is at most 998 octets, has no 8-bit byte, NUL or bare CR, no trailing white space and
/// does not start with `From `; no line starts with `Content-Transfer-Encoding` unless it names
/// 7bit, base64 or quoted-printable (an 8bit or binary label inside would be relabelled); the
/// top level is not `message/*` (its header would be re-emitted); and every header inside the
/// body (of a body part, or of an encapsulated message) ends with a blank line, because the
/// converter writes the blank line a header lacks.
/// Under these conditions every leaf is safe 7-bit, delimiters have no padding, and preamble and
/// epilogue have no trailing white space, so the converter changes nothing in the body.
///
/// The headers inside are found without parsing the tree: the boundaries are learnt from the
/// top-level Content-Type and from every Content-Type in a header inside, and a line that is a
/// delimiter of any of them starts a header. Erring on the side of "a header starts here" only
/// turns away a body that would have been kept.
public struct VerbatimBodyScanner: Sendable {
    private var verbatim: Bool
    private var needleFound = false
    private let needle: [UInt8]
    /// The start of a line that continues in the next piece (at most 1000 bytes are kept).
    private var partial: [UInt8] = []
    /// "--" followed by each boundary seen so far.
    private var delimiters: [[UInt8]] = []
    /// A multipart/digest was seen: a part without Content-Type may be message/rfc822.
    private var digestSeen = false
    /// The lines of the header being read (nil in a body); at most `maximumHeader` bytes.
    private var header: [UInt8]?
    /// A field has started in `header`, so a line starting with white space continues it.
    private var headerHasField = false
    private static let maximumHeader = 64 * 1024

    private static let cte = Array("content-transfer-encoding".utf8)
    private static let allowedEncodings = ["7bit", "base64", "quoted-printable"].map { Array($0.utf8) }

    /// - Parameters:
    ///   - fields: the message's top-level header fields.
    ///   - needle: bytes whose occurrence in the body is reported (a multipart boundary).
    public init(fields: [HeaderField], needle: [UInt8]) {
        let type = fields.first(named: "Content-Type").flatMap { ContentType(parsing: $0.value) }
        verbatim = type?.type != "message"
        self.needle = needle
        if let type { learn(type) }
    }

    /// Feeds the next piece of the body.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard verbatim, bytes.count > 0 else { return }
        let b = bytes.bindMemory(to: UInt8.self)
        var start = 0
        var i = 0
        while i < b.count {
            if b[i] == Byte.lf {
                if partial.isEmpty {
                    check(UnsafeBufferPointer(rebasing: b[start...i]), terminated: true)
                } else {
                    partial.append(contentsOf: b[start...i])
                    let line = partial
                    partial.removeAll(keepingCapacity: true)
                    line.withUnsafeBufferPointer { check($0, terminated: true) }
                }
                if !verbatim { return }
                start = i + 1
            }
            i += 1
        }
        if start < b.count {
            partial.append(contentsOf: b[start...])
            if partial.count > 1000 { verbatim = false }   // a line over 998 octets
        }
    }

    /// Ends the body: whether it is kept verbatim, and whether `needle` occurs in it.
    public mutating func finish() -> (verbatim: Bool, containsNeedle: Bool) {
        if verbatim && !partial.isEmpty {
            let line = partial
            partial = []
            line.withUnsafeBufferPointer { check($0, terminated: false) }
        }
        // A body that ends inside a header: the converter ends that header's lines its own way.
        if header != nil { verbatim = false }
        return (verbatim, needleFound)
    }

    /// Notes the boundary of a multipart type and whether it is a digest.
    private mutating func learn(_ type: ContentType) {
        guard type.isMultipart, let boundary = type.boundary, !boundary.isEmpty else { return }
        let delimiter = Array(("--" + boundary).utf8)
        if !delimiters.contains(delimiter) { delimiters.append(delimiter) }
        if type.subtype == "digest" { digestSeen = true }
    }

    /// Whether a line (without its CRLF) is a delimiter or close-delimiter of a known boundary,
    /// and which. Transport padding needs no case: a line with trailing white space is not kept.
    private func delimiter(_ content: UnsafeBufferPointer<UInt8>) -> (isDelimiter: Bool, isClose: Bool) {
        for d in delimiters where content.count == d.count || content.count == d.count + 2 {
            guard content.starts(with: d) else { continue }
            if content.count == d.count { return (true, false) }
            if content[d.count] == Byte.dash && content[d.count + 1] == Byte.dash { return (true, true) }
        }
        return (false, false)
    }

    /// One line inside a header (content without CRLF): a field, a continuation, or the blank
    /// line that ends it. Anything else ends the header without a blank line, which the
    /// converter would add.
    private mutating func headerLine(_ content: UnsafeBufferPointer<UInt8>, line: UnsafeBufferPointer<UInt8>) {
        if content.isEmpty {
            endHeader()
            return
        }
        if Byte.isWSP(content[0]) {
            guard headerHasField else { verbatim = false; return }
        } else {
            var i = 0
            while i < content.count, content[i] >= 33, content[i] <= 126, content[i] != Byte.colon { i += 1 }
            // White space before the colon (RFC 5322's obsolete syntax) is not kept: the converter
            // writes the field as `name:value`, so such a header is not verbatim.
            guard i > 0, i < content.count, content[i] == Byte.colon else { verbatim = false; return }
            headerHasField = true
        }
        header?.append(contentsOf: line)
        if (header?.count ?? 0) > Self.maximumHeader { verbatim = false }
    }

    /// The blank line after a header: learn its boundaries; an encapsulated message's own
    /// header follows the header of a message/* part.
    private mutating func endHeader() {
        let block = header ?? []
        header = nil
        headerHasField = false
        guard let parsed = try? HeaderParser.parse(block, in: 0..<block.count, limits: MIMELimits()) else {
            verbatim = false
            return
        }
        var nextIsHeader = false
        if let field = parsed.fields.first(named: "Content-Type") {
            if let type = ContentType(parsing: field.value) {
                learn(type)
                nextIsHeader = type.type == "message"
            }
        } else {
            nextIsHeader = digestSeen
        }
        for field in parsed.fields.dropFirst() where field.hasName("Content-Type") {
            if let type = ContentType(parsing: field.value) { learn(type) }
        }
        if nextIsHeader { header = [] }
    }

    /// One line, with its CRLF when `terminated`.
    private mutating func check(_ line: UnsafeBufferPointer<UInt8>, terminated: Bool) {
        var end = line.count
        if terminated {
            guard end >= 2, line[end - 2] == Byte.cr else { verbatim = false; return }   // bare LF
            end -= 2
        }
        let content = UnsafeBufferPointer(rebasing: line[0..<end])
        guard content.count <= 998 else { verbatim = false; return }
        for byte in content where byte >= 0x80 || byte == 0 || byte == Byte.cr {
            _ = byte
            verbatim = false
            return
        }
        if let last = content.last, Byte.isWSP(last) { verbatim = false; return }
        if content.starts(with: [0x46, 0x72, 0x6F, 0x6D, 0x20]) { verbatim = false; return }   // "From "
        if content.first == Byte.dash, case let found = delimiter(content), found.isDelimiter {
            // A header that runs into the next delimiter gets its blank line too.
            guard header == nil else { verbatim = false; return }
            header = found.isClose ? nil : []
            headerHasField = false
        } else if header != nil {
            headerLine(content, line: line)
            if !verbatim { return }
        }
        if content.count >= Self.cte.count, (content[0] | 0x20) == 0x63,
           zip(content.prefix(Self.cte.count), Self.cte).allSatisfy({ ($0 | 0x20) == $1 }) {
            let value = content.dropFirst(Self.cte.count).map { $0 | 0x20 }
            if !Self.allowedEncodings.contains(where: { ByteSearch.contains(value, $0) }) { verbatim = false; return }
        }
        if !needleFound, !needle.isEmpty, ByteSearch.contains(content, needle) { needleFound = true }
    }
}
