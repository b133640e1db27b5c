// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import MIME

@Suite struct StreamingMultipartConverterTests {
    /// The streamed entity: pass 1 over `body` in pieces of `piece` bytes, then the plan rendered
    /// from the same bytes. Nil when the converter leaves the message to the in-memory path.
    func streamed(_ fields: [HeaderField], _ body: [UInt8], piece: Int, largeLeaf: Int,
                  protecting: Bool = false) throws -> [UInt8]? {
        guard var converter = StreamingMultipartConverter(fields: fields, needle: Array("NEEDLE".utf8), largeLeaf: largeLeaf)
        else { return nil }
        var i = 0
        while i < body.count {
            let end = min(i + piece, body.count)
            body[i..<end].withUnsafeBytes { converter.feed($0) }
            i = end
        }
        guard let plan = try converter.finish(protectingHeaders: protecting) else { return nil }
        return try plan.render(body: body, pieceSize: piece)
    }

    static let text8 = String(repeating: "caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e, une ligne de texte en UTF-8\n", count: 40)
    static let base64 = String(repeating: String(repeating: "QUJD", count: 19) + "\n", count: 40)
    static let ascii = String(repeating: "plain seven bit line, kept as it is\n", count: 40)

    /// Multiparts whose large leaves stream: 8-bit text beside base64 (the 8BITMIME shape),
    /// nested, no charset, trailing white space, not UTF-8, bare LF text, no close delimiter.
    static let messages: [String] = [
        "From: a@b.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\npreamble\n--b1\n"
            + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + text8
            + "--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + base64 + "--b1--\nepilogue\n",
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=outer\n\n--outer\nContent-Type: multipart/alternative; boundary=inner\n\n"
            + "--inner\nContent-Type: text/plain\n\n" + text8 + "--inner\nContent-Type: text/html\n\n<p>" + ascii + "--inner--\n"
            + "--outer\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\n" + base64 + "--outer--\n",
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\n" + text8 + "--b\nContent-Type: text/plain\n\n"
            + String(repeating: "trailing space \nFrom here\n", count: 60) + "--b\nContent-Type: text/plain\n\nlast, no close\n" + ascii,
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\n"
            + ascii + "--b\nContent-Type: text/plain\n\n" + text8 + "--b--\n",
    ]

    @Test(arguments: [3, 64, 1000, 1 << 20])
    func streamedEntityIsTheInMemoryOne(piece: Int) throws {
        for (n, text) in Self.messages.enumerated() {
            for lineEnds in ["\n", "\r\n"] {
                let (fields, body) = try splitMessage(text.replacingOccurrences(of: "\n", with: lineEnds))
                let whole = try SignableEntity.make(fields: fields, body: body).bytes
                for protecting in [false, true] {
                    let streamed = try self.streamed(fields, body, piece: piece, largeLeaf: 512, protecting: protecting)
                    let expected = try protecting ? SignableEntity.make(fields: fields, body: body).protectingHeaders(fields).bytes : whole
                    #expect(streamed == expected, "message \(n), piece \(piece), \(lineEnds == "\n" ? "LF" : "CRLF"), protecting \(protecting)")
                }
            }
        }
    }

    @Test func notStreamedWhenSmallNestedMessageOrNeedle() throws {
        let small = try splitMessage("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nshort\n--b--\n")
        #expect(try streamed(small.fields, small.body, piece: 100, largeLeaf: 512) == nil)
        let message = try splitMessage("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nSubject: x\n\n" + Self.text8 + "--b--\n")
        #expect(try streamed(message.fields, message.body, piece: 100, largeLeaf: 512) == nil)
        let needle = try splitMessage("Content-Type: multipart/mixed; boundary=b\n\n--b\n\n" + Self.ascii + "NEEDLE\n" + Self.ascii + "--b--\n")
        #expect(try streamed(needle.fields, needle.body, piece: 100, largeLeaf: 512) == nil)
        let single = try splitMessage("Content-Type: text/plain\n\n" + Self.text8)
        #expect(StreamingMultipartConverter(fields: single.fields, needle: []) == nil)
    }
}
