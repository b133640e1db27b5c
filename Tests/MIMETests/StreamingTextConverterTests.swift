// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import MIME

@Suite struct StreamingTextConverterTests {
    /// The entity the streaming path makes: pass 1 and pass 2 over `body` fed in pieces of
    /// `piece` bytes. Nil when the converter refuses the message or a line had to be cut.
    func streamed(_ fields: [HeaderField], _ body: [UInt8], piece: Int) throws -> [UInt8]? {
        guard var converter = StreamingTextConverter(fields: fields) else { return nil }
        func pieces(_ each: (UnsafeRawBufferPointer) -> Void) {
            var i = 0
            while i < body.count {
                let end = min(i + piece, body.count)
                body[i..<end].withUnsafeBytes { each($0) }
                i = end
            }
        }
        var scanRuns = LineRuns()
        pieces { scanRuns.feed($0) { converter.scan($0) } }
        scanRuns.finish { converter.scan($0) }
        if scanRuns.cutALine { return nil }
        var out = try converter.header()
        var convertRuns = LineRuns()
        pieces { convertRuns.feed($0) { out += converter.convert($0) } }
        convertRuns.finish { out += converter.convert($0) }
        return out
    }

    static let longLine = String(repeating: "word ", count: 400)   // 2,000 characters, trailing space

    /// Single-part text bodies that the 7-bit conversion changes, each in a different way.
    static let messages: [String] = [
        "From: a@b.example\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\ncaf\u{e9} cr\u{e8}me\nsecond line\n",
        "From: a@b.example\nContent-Type: text/plain\n\nno charset stated: na\u{ef}ve\n",
        "From: a@b.example\n\nno content type, trailing space \nFrom the start\n.dot line\n",
        "From: a@b.example\nContent-Type: text/html; charset=us-ascii\n\n<p>" + longLine + "</p>\n",
        "From: a@b.example\nContent-Type: text/plain; charset=utf-8\n\nends without a line break: \u{fc}",
        "From: a@b.example\nContent-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\nseven bit, bare line ends only\n",
        "From: a@b.example\nContent-Type: text/plain\nContent-Transfer-Encoding: binary\n\ntab at the end\t\n\n\nblank lines above\n",
    ]

    /// The converter's promise: byte for byte what SignableEntity.make gives for the whole body,
    /// however the body is cut into pieces.
    @Test(arguments: messages)
    func streamedEntityEqualsTheWholeEntity(message: String) throws {
        for lineEnds in ["\n", "\r\n"] {
            let text = message.replacingOccurrences(of: "\n", with: lineEnds)
            let (fields, body) = try splitMessage(text)
            let whole = try SignableEntity.make(fields: fields, body: body).bytes
            for piece in [1, 2, 7, 64, 1000, 1 << 20] {
                let streamed = try #require(try streamed(fields, body, piece: piece))
                #expect(streamed == whole, "piece \(piece), line ends \(lineEnds == "\n" ? "LF" : "CRLF")")
            }
        }
    }

    @Test func latin1TextGetsUnknown8bitLikeTheWholeBody() throws {
        let fields = [HeaderField(name: "Content-Type", value: " text/plain")]
        let body: [UInt8] = Array("caf".utf8) + [0xE9] + Array("\r\nline two\r\n".utf8)
        let whole = try SignableEntity.make(fields: fields, body: body).bytes
        #expect(try streamed(fields, body, piece: 3) == whole)
        #expect(String(decoding: whole, as: UTF8.self).contains("unknown-8bit"))
    }

    @Test func onlyASingleTextPartInAnIdentityEncodingIsStreamed() {
        #expect(StreamingTextConverter(fields: [HeaderField(name: "Content-Type", value: " multipart/mixed; boundary=x")]) == nil)
        #expect(StreamingTextConverter(fields: [HeaderField(name: "Content-Type", value: " application/pdf")]) == nil)
        #expect(StreamingTextConverter(fields: [HeaderField(name: "Content-Type", value: " message/rfc822")]) == nil)
        #expect(StreamingTextConverter(fields: [HeaderField(name: "Content-Type", value: " text/plain"),
                                                HeaderField(name: "Content-Transfer-Encoding", value: " base64")]) == nil)
        #expect(StreamingTextConverter(fields: [HeaderField(name: "Content-Type", value: " text/plain"),
                                                HeaderField(name: "Content-Transfer-Encoding", value: " 8bit")]) != nil)
        #expect(StreamingTextConverter(fields: []) != nil)
    }

    @Test func aLineLongerThanTheCarryIsCutAndReported() throws {
        var runs = LineRuns()
        var handedOut = 0
        let line = [UInt8](repeating: 0x61, count: 2 * LineRuns.maximumLine) + Array("\r\nshort\r\n".utf8)
        line.withUnsafeBytes { all in
            var i = 0
            while i < all.count {
                let end = min(i + 4096, all.count)
                runs.feed(UnsafeRawBufferPointer(rebasing: all[i..<end])) { handedOut += $0.count }
                i = end
            }
        }
        runs.finish { handedOut += $0.count }
        #expect(runs.cutALine)
        #expect(handedOut == line.count)
    }

    @Test func runsEndAfterALineBreak() {
        var runs = LineRuns()
        var seen: [[UInt8]] = []
        for piece in ["ab", "c\r\nde", "f\r", "\ng", "h"] {
            Array(piece.utf8).withUnsafeBytes { runs.feed($0) { seen.append(Array($0)) } }
        }
        runs.finish { seen.append(Array($0)) }
        #expect(seen.map { String(decoding: $0, as: UTF8.self) } == ["abc\r\n", "def\r\n", "gh"])
        #expect(!runs.cutALine)
    }
}
