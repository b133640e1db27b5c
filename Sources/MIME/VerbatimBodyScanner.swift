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
/// top level is not `message/*` (its header would be re-emitted). Under these conditions every
/// leaf is safe 7-bit, delimiters have no padding, and preamble and epilogue have no trailing
/// white space, so the converter changes nothing in the body.
public struct VerbatimBodyScanner: Sendable {
    private var verbatim: Bool
    private var needleFound = false
    private let needle: [UInt8]
    /// The start of a line that continues in the next piece (at most 1000 bytes are kept).
    private var partial: [UInt8] = []

    private static let cte = Array("content-transfer-encoding".utf8)
    private static let allowedEncodings = ["7bit", "base64", "quoted-printable"].map { Array($0.utf8) }

    /// - Parameters:
    ///   - fields: the message's top-level header fields.
    ///   - needle: bytes whose occurrence in the body is reported (a multipart boundary).
    public init(fields: [HeaderField], needle: [UInt8]) {
        let type = fields.first(named: "Content-Type").flatMap { ContentType(parsing: $0.value) }
        verbatim = type?.type != "message"
        self.needle = needle
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
        return (verbatim, needleFound)
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
        if content.count >= Self.cte.count, (content[0] | 0x20) == 0x63,
           zip(content.prefix(Self.cte.count), Self.cte).allSatisfy({ ($0 | 0x20) == $1 }) {
            let value = content.dropFirst(Self.cte.count).map { $0 | 0x20 }
            if !Self.allowedEncodings.contains(where: { ByteSearch.contains(value, $0) }) { verbatim = false; return }
        }
        if !needleFound, !needle.isEmpty, ByteSearch.contains(content, needle) { needleFound = true }
    }
}
