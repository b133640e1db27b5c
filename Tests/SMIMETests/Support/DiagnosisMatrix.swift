// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
@testable import SMIME

/// The generated diagnosis matrix: seed messages (a plain text part; multipart/mixed with an
/// alternative, an attachment, a preamble; a forwarded message/rfc822), each with its text parts
/// in 7bit, 8bit, quoted-printable or base64, signed by `openssl cms -sign`, then broken by one
/// cause (or two) at one position, delivered with CRLF (the wire) or LF (a stored copy).
enum DiagnosisMatrix {
    enum Encoding: String, CaseIterable, Sendable { case sevenBit = "7bit", eightBit = "8bit", qp = "quoted-printable", base64 }
    enum Seed: String, CaseIterable, Sendable { case simple, nested, forwarded }

    /// One change at one place.
    enum Change: Sendable {
        case footer(String), html(String), whitespace(String), blankAdded(String), blankRemoved(String)
        case eightBitToQP(String), rewrap(String), qpReencode(String), refold(String), fromEscape(String)
        case partAppended(String), epilogue(String), preamble(String), signerLF

        var cause: DiagnosisCause {
            switch self {
            case .footer, .epilogue, .preamble: return .textAppended
            case .html: return .htmlInserted
            case .whitespace: return .trailingWhitespaceStripped
            case .blankAdded: return .blankLineBeforeBoundary(.added)
            case .blankRemoved: return .blankLineBeforeBoundary(.removed)
            case .eightBitToQP: return .transferEncodingChanged(.eightBitToQuotedPrintable)
            case .rewrap: return .transferEncodingChanged(.base64Rewrapped)
            case .qpReencode: return .transferEncodingChanged(.quotedPrintableReencoded)
            case .refold: return .headersChanged(.refolded)
            case .fromEscape: return .fromEscaped
            case .partAppended: return .partAppended
            case .signerLF: return .lineEndsChanged
            }
        }

        var name: String {
            switch self {
            case .footer(let s): return "footer@\(s.isEmpty ? "top" : s)"
            case .html(let s): return "html@\(s)"
            case .whitespace(let s): return "whitespace@\(s.isEmpty ? "top" : s)"
            case .blankAdded(let s): return "blank-added@\(s)"
            case .blankRemoved(let s): return "blank-removed@\(s)"
            case .eightBitToQP(let s): return "8bit-to-qp@\(s.isEmpty ? "top" : s)"
            case .rewrap(let s): return "rewrap@\(s.isEmpty ? "top" : s)"
            case .qpReencode(let s): return "qp-reencode@\(s.isEmpty ? "top" : s)"
            case .refold(let s): return "refold@\(s.isEmpty ? "top" : s)"
            case .fromEscape(let s): return "from@\(s.isEmpty ? "top" : s)"
            case .partAppended(let s): return "part-appended@\(s.isEmpty ? "top" : s)"
            case .epilogue(let s): return "epilogue@\(s.isEmpty ? "top" : s)"
            case .preamble(let s): return "preamble@\(s.isEmpty ? "top" : s)"
            case .signerLF: return "signer-lf"
            }
        }
    }

    struct Case: Sendable, CustomStringConvertible {
        var seed: Seed
        var encoding: Encoding
        var changes: [Change]
        var storedLF: Bool
        var description: String {
            "\(seed.rawValue)/\(encoding.rawValue)/\(changes.map(\.name).joined(separator: "+"))/\(storedLF ? "LF" : "CRLF")"
        }
        /// The table row: the cause, or the pair of causes.
        var label: String { changes.map(\.cause.label).joined(separator: " + ") }
    }

    // MARK: seeds

    static func text(_ encoding: Encoding) -> String {
        let umlaut = encoding == .sevenBit ? "ae" : "\u{E4}"
        return "Hallo Bob,\r\n\r\nthe figures for M\(umlaut)rz are below; a long line follows so that quoted-printable "
            + "needs soft line breaks in it: " + String(repeating: "zahlen ", count: 12) + "\r\n"
            + "From the report: 42.\r\n\r\n-- \r\nAlice\r\n"
    }

    static let htmlText = "<html><body><p>Hallo Bob,</p>\r\n<p>the figures are below.</p>\r\n</body></html>\r\n"

    /// A text part (header, blank line, body with its final line end: the delimiter's CRLF).
    static func part(_ subtype: String, _ content: String, _ encoding: Encoding) -> String {
        let charset = encoding == .sevenBit ? "us-ascii" : "utf-8"
        let header = "Content-Type: text/\(subtype); charset=\(charset)\r\nContent-Transfer-Encoding: \(encoding.rawValue)\r\n\r\n"
        let bytes = Array(content.utf8)
        switch encoding {
        case .sevenBit, .eightBit: return header + content
        case .qp: return header + String(decoding: QuotedPrintable.encode(bytes, isText: true), as: UTF8.self)
        case .base64: return header + String(decoding: Base64Lines.encode(bytes, lineLength: 76), as: UTF8.self) + "\r\n"
        }
    }

    static func alternative(_ boundary: String, _ encoding: Encoding) -> String {
        // A blank line before the close delimiter, as Thunderbird writes it.
        "Content-Type: multipart/alternative; boundary=\"\(boundary)\"\r\n\r\n--\(boundary)\r\n"
            + part("plain", text(encoding), encoding) + "--\(boundary)\r\n" + part("html", htmlText, encoding)
            + "\r\n--\(boundary)--"
    }

    static func entity(_ seed: Seed, _ encoding: Encoding) -> String {
        switch seed {
        case .simple:
            return part("plain", text(encoding), encoding)
        case .nested:
            let data = String(decoding: Base64Lines.encode((0..<400).map { UInt8($0 % 251) }, lineLength: 76), as: UTF8.self)
            return "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\nThis is a multi-part message in MIME format.\r\n"
                + "--mix\r\n" + alternative("alt", encoding) + "\r\n--mix\r\n"
                + "Content-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n"
                + "Content-Disposition: attachment; filename=\"data.bin\"\r\n\r\n" + data + "\r\n--mix--\r\n"
        case .forwarded:
            return "Content-Type: multipart/mixed; boundary=\"fwd\"\r\n\r\n--fwd\r\n"
                + part("plain", "See the message below.\r\n", encoding == .base64 ? .sevenBit : encoding)
                + "--fwd\r\nContent-Type: message/rfc822\r\n\r\nFrom: Carol <carol@example.org>\r\nSubject: figures\r\n"
                + "MIME-Version: 1.0\r\n" + alternative("alt2", encoding) + "\r\n--fwd--\r\n"
        }
    }

    /// Where each change goes in each seed (the section of the part, or of the multipart).
    static func cells(_ seed: Seed, _ encoding: Encoding) -> [Change] {
        let plain: [String], html: [String], multis: [String]
        switch seed {
        case .simple: plain = [""]; html = []; multis = []
        case .nested: plain = ["1.1"]; html = ["1.2"]; multis = ["", "1"]
        case .forwarded: plain = ["2.1"]; html = ["2.2"]; multis = ["", "2"]
        }
        var out: [Change] = [.signerLF]
        for s in plain {
            out += [.footer(s), .refold(s)]
            if encoding == .sevenBit || encoding == .eightBit { out += [.whitespace(s), .fromEscape(s)] }
            if encoding == .eightBit { out.append(.eightBitToQP(s)) }
            if encoding == .qp { out.append(.qpReencode(s)) }
            if encoding == .base64 { out.append(.rewrap(s)) }
        }
        for s in html { out += [.html(s), .refold(s)] }
        for s in multis {
            out += [.partAppended(s), .epilogue(s), .blankAdded(s)]
        }
        switch seed {
        case .simple: out += [.blankAdded(""), .blankRemoved("")]
        case .nested: out += [.preamble(""), .blankRemoved("1"), .blankAdded("preamble"), .rewrap("2")]
        case .forwarded: out += [.blankRemoved("2"), .refold("2"), .footer("1")]
        }
        return out
    }

    /// Pairs of causes at once.
    static func pairs(_ seed: Seed, _ encoding: Encoding) -> [[Change]] {
        let s: String
        switch seed { case .simple: s = ""; case .nested: s = "1.1"; case .forwarded: s = "2.1" }
        var out: [[Change]] = [[.footer(s), .signerLF]]
        if seed != .simple { out.append([.html(seed == .nested ? "1.2" : "2.2"), .signerLF]) }
        if encoding == .sevenBit || encoding == .eightBit { out.append([.footer(s), .whitespace(s)]) }
        if encoding == .eightBit {
            out.append([.footer(s), .eightBitToQP(s)])
            if seed == .nested { out.append([.eightBitToQP(s), .rewrap("2")]) }
        }
        return out
    }

    static let all: [Case] = {
        var out: [Case] = []
        for seed in Seed.allCases {
            for encoding in Encoding.allCases {
                for stored in [false, true] {
                    for change in cells(seed, encoding) { out.append(Case(seed: seed, encoding: encoding, changes: [change], storedLF: stored)) }
                    for pair in pairs(seed, encoding) { out.append(Case(seed: seed, encoding: encoding, changes: pair, storedLF: stored)) }
                }
            }
        }
        return out
    }()

    // MARK: signing (openssl cms -sign, as a mail client would)

    /// The DER detached signature by alice over `content`, made by `openssl cms -sign -binary`.
    static func opensslSign(_ content: [UInt8]) throws -> [UInt8] {
        let pki = try TestPKI.get()
        let scratch = try TemporaryDirectory(prefix: "matrix")
        let input = try scratch.write("content", content)
        let output = scratch.path + "/sig.der"
        let result = try Subprocess.run("openssl", ["cms", "-sign", "-binary", "-in", input, "-signer", pki.certs + "/alice.pem",
                                                    "-md", "sha256", "-outform", "DER", "-out", output])
        guard result.status == 0 else { throw TestFailure("openssl cms -sign: \(result.combined)") }
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
    }

    /// Signatures per (seed, encoding, over LF): made once per run.
    static let signatures = LockedValue<[String: [UInt8]]>([:])

    static func signature(_ seed: Seed, _ encoding: Encoding, lf: Bool) throws -> [UInt8] {
        let key = "\(seed)/\(encoding)/\(lf)"
        if let found = signatures.get()[key] { return found }
        let bytes = Array(entity(seed, encoding).utf8)
        let der = try opensslSign(lf ? LineEnds.toLF(bytes) : bytes)
        signatures.update { $0[key] = der }
        return der
    }

    /// The whole broken message for `item`.
    static func message(_ item: Case) throws -> [UInt8] {
        var bytes = Array(entity(item.seed, item.encoding).utf8)
        for change in item.changes { bytes = try apply(change, to: bytes) }
        let signerLF = item.changes.contains { if case .signerLF = $0 { return true } else { return false } }
        let der = try signature(item.seed, item.encoding, lf: signerLF)
        let wrapped = try SMIMEWriter.multipartSigned(entity: bytes, signature: der, digest: .sha256)
        let message = Array((Samples.outerHeader + "Content-Type: " + wrapped.contentType + "\r\n\r\n").utf8) + wrapped.body
        return item.storedLF ? LineEnds.toLF(message) : message
    }

    /// The seed message intact (for the corruption cases).
    static func intact(_ seed: Seed, _ encoding: Encoding) throws -> [UInt8] {
        let bytes = Array(entity(seed, encoding).utf8)
        let wrapped = try SMIMEWriter.multipartSigned(entity: bytes, signature: try signature(seed, encoding, lf: false), digest: .sha256)
        return Array((Samples.outerHeader + "Content-Type: " + wrapped.contentType + "\r\n\r\n").utf8) + wrapped.body
    }

    // MARK: breaking

    static func find(_ section: String, in root: MIMEEntity, multipart: Bool = false) throws -> MIMEEntity {
        // A message/rfc822 part and the message in it share a section: prefer the one asked for.
        let matches = root.allEntities.filter { $0.section == section }
        if let hit = matches.last(where: { ($0.multipart != nil) == multipart || (!multipart && $0.encapsulatedMessage == nil && $0.multipart == nil) }) {
            return hit
        }
        throw TestFailure("no part \(section)")
    }

    static func splice(_ bytes: [UInt8], _ range: Range<Int>, _ new: [UInt8]) -> [UInt8] {
        Array(bytes[..<range.lowerBound]) + new + Array(bytes[range.upperBound...])
    }

    static func replacing(_ bytes: [UInt8], in range: Range<Int>, _ old: String, _ new: String) throws -> [UInt8] {
        let text = String(decoding: bytes[range], as: UTF8.self)
        guard text.contains(old) else { throw TestFailure("\(old.debugDescription) not in part") }
        return splice(bytes, range, Array(text.replacingOccurrences(of: old, with: new).utf8))
    }

    static let footer = "____\r\nExample Corp, Sample Street 1\r\n"

    static func apply(_ change: Change, to bytes: [UInt8]) throws -> [UInt8] {
        let root = try MIMEParser.parse(message: bytes)
        let crlf = "\r\n"
        switch change {
        case .signerLF:
            return bytes
        case .footer(let s):
            let leaf = try find(s, in: root)
            let body = leaf.bodyRange
            if leaf.transferEncoding == .base64 {
                let trailing = Array(bytes[body].reversed().prefix { $0 == 0x0D || $0 == 0x0A }.reversed())
                let text = Base64Lines.decode(leaf.body).bytes + Array(footer.utf8)
                return splice(bytes, body, Base64Lines.encode(text, lineLength: 76) + trailing)
            }
            let endsWithLine = bytes[..<body.upperBound].suffix(2).elementsEqual([0x0D, 0x0A])
            let added = endsWithLine ? footer : crlf + String(footer.dropLast(2))
            return splice(bytes, body.upperBound..<body.upperBound, Array(added.utf8))
        case .html(let s):
            let leaf = try find(s, in: root)
            let insert = "<p>Scanned by Example</p>\r\n"
            if leaf.transferEncoding == .base64 {
                let trailing = Array(bytes[leaf.bodyRange].reversed().prefix { $0 == 0x0D || $0 == 0x0A }.reversed())
                let text = String(decoding: Base64Lines.decode(leaf.body).bytes, as: UTF8.self).replacingOccurrences(of: "</body>", with: insert + "</body>")
                return splice(bytes, leaf.bodyRange, Base64Lines.encode(Array(text.utf8), lineLength: 76) + trailing)
            }
            return try replacing(bytes, in: leaf.bodyRange, "</body>", insert + "</body>")
        case .whitespace(let s):
            return try replacing(bytes, in: try find(s, in: root).bodyRange, "\r\n-- \r\n", "\r\n--\r\n")
        case .fromEscape(let s):
            return try replacing(bytes, in: try find(s, in: root).bodyRange, "\r\nFrom the", "\r\n>From the")
        case .eightBitToQP(let s):
            let leaf = try find(s, in: root)
            let qp = QuotedPrintable.encode(leaf.body, isText: true)
            let changed = splice(bytes, leaf.bodyRange, qp)
            return try replacing(changed, in: leaf.headerRange, "Transfer-Encoding: 8bit", "Transfer-Encoding: quoted-printable")
        case .rewrap(let s):
            let leaf = try find(s, in: root)
            let trailing = Array(bytes[leaf.bodyRange].reversed().prefix { $0 == 0x0D || $0 == 0x0A }.reversed())
            return splice(bytes, leaf.bodyRange, Base64Lines.encode(Base64Lines.decode(leaf.body).bytes, lineLength: 64) + trailing)
        case .qpReencode(let s):
            let leaf = try find(s, in: root)
            let decoded = QuotedPrintable.decode(leaf.body)
            return splice(bytes, leaf.bodyRange, Array(DiagnosisTests.quotedPrintable(decoded, width: 60).utf8))
        case .refold(let s):
            let entity = s == "2" ? try find(s, in: root, multipart: true) : try find(s, in: root)
            let header = s.isEmpty ? 0..<root.bodyRange.lowerBound : entity.headerRange
            return try replacing(bytes, in: header, "; ", ";\r\n ")
        case .partAppended(let s):
            let node = try find(s, in: root, multipart: true)
            guard let multipart = node.multipart, let close = multipart.closeDelimiterRange else { throw TestFailure("no multipart \(s)") }
            let part = "\r\n--\(multipart.boundary)\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nMailing list footer line"
            return splice(bytes, close.lowerBound..<close.lowerBound, Array(part.utf8))
        case .epilogue(let s):
            let node = try find(s, in: root, multipart: true)
            guard let multipart = node.multipart, let close = multipart.closeDelimiterRange else { throw TestFailure("no multipart \(s)") }
            let hasLineEnd = bytes[..<close.upperBound].suffix(2).elementsEqual([0x0D, 0x0A])
            let text = (hasLineEnd ? "" : crlf) + "Scanned by Example" + (hasLineEnd ? crlf : "")
            return splice(bytes, close.upperBound..<close.upperBound, Array(text.utf8))
        case .preamble(let s):
            let node = try find(s, in: root, multipart: true)
            guard let multipart = node.multipart else { throw TestFailure("no multipart \(s)") }
            let at = multipart.preambleRange.upperBound
            return splice(bytes, at..<at, Array("\r\nScanned by Example".utf8))
        case .blankAdded(let s):
            // Before the first delimiter after the preamble, or before the last delimiter of the
            // multipart at `s` (the end of the signed content for a leaf).
            if s.isEmpty, root.multipart == nil { return bytes + Array(crlf.utf8) }
            let node = try find(s == "preamble" ? "" : s, in: root, multipart: true)
            guard let multipart = node.multipart else { throw TestFailure("no multipart \(s)") }
            let at = s == "preamble" ? multipart.delimiterRanges[0].lowerBound : multipart.delimiterRanges.last!.lowerBound
            return splice(bytes, at..<at, Array(crlf.utf8))
        case .blankRemoved(let s):
            if s.isEmpty, root.multipart == nil { return Array(bytes.dropLast(2)) }
            let node = try find(s == "2" ? "2" : s, in: root, multipart: true)
            guard let multipart = node.multipart, let close = multipart.closeDelimiterRange else { throw TestFailure("no multipart \(s)") }
            guard bytes[(close.lowerBound - 2)..<close.lowerBound].elementsEqual([0x0D, 0x0A]) else { throw TestFailure("no blank line") }
            return splice(bytes, (close.lowerBound - 2)..<close.lowerBound, [])
        }
    }
}
