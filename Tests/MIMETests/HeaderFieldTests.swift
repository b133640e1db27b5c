// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import MIME

@Suite struct HeaderFieldTests {
    @Test func unfoldsLFAndCRLFFolds() {
        let f = HeaderField(name: "Subject", value: " Hello\n  world\r\n\tagain ")
        #expect(f.unfoldedValue == "Hello  world\tagain")
        #expect(f.canonicalBytes == bytes("Subject: Hello\r\n  world\r\n\tagain \r\n"))
    }

    /// A stray CR (a `\r\r\n` line end leaves one) is not a line break of the field: written
    /// as CRLF it would start a new field or end the header.
    @Test func lineBreaksThatAreNotFoldsBecomeSpaces() {
        let stray = HeaderField(name: "Content-Type", rawValue: bytes(" text/plain\r\r; charset=us-ascii\r"))
        #expect(stray.hasLineBreakThatIsNotAFold)
        #expect(text(stray.canonicalBytes) == "Content-Type: text/plain  ; charset=us-ascii \r\n")
        let beforeText = HeaderField(name: "X", value: " a\nb\r\n c\r d")
        #expect(beforeText.hasLineBreakThatIsNotAFold)
        #expect(text(beforeText.canonicalBytes) == "X: a b\r\n c\r\n d\r\n")
        let folded = HeaderField(name: "X", value: " a\n\tb\r\n c")
        #expect(!folded.hasLineBreakThatIsNotAFold)
        #expect(folded.canonicalValueBytes == bytes(" a\r\n\tb\r\n c"))
    }

    @Test func nameMatchIsCaseInsensitive() {
        let fields = [HeaderField(name: "content-TYPE", value: " text/plain"), HeaderField(name: "X", value: "1")]
        #expect(fields[0].hasName("Content-Type"))
        #expect(fields.first(named: "CONTENT-type")?.value == " text/plain")
        #expect(fields.first(named: "Content-Disposition") == nil)
    }

    /// Only letters match across case: "@" and "`", "[" and "{" differ by the same bit.
    @Test func nameMatchFoldsLettersOnly() {
        #expect(HeaderField(name: "X-A@B", value: "").hasName("x-a@b"))
        #expect(!HeaderField(name: "X-A@B", value: "").hasName("x-a`b"))
        #expect(!HeaderField(name: "X[1]", value: "").hasName("x{1}"))
        #expect(!HeaderField(name: "From", value: "").hasName("Fro"))
        #expect(!HeaderField(name: "From", value: "").hasName("Fromm"))
        #expect(HeaderField(name: "", value: "").hasName(""))
        // Names outside ASCII compare as lowercased() does.
        #expect(HeaderField(name: "X-Ä", value: "").hasName("x-ä"))
        #expect(HeaderField(name: "\u{212A}ey", value: "").hasName("key") == ("\u{212A}ey".lowercased() == "key"))
        let fields = [HeaderField(name: "from", value: " a"), HeaderField(name: "FROM", value: " b"),
                      HeaderField(name: "From-X", value: " c")]
        #expect(fields.all(named: "From").map(\.value) == [" a", " b"])
    }

    @Test func invalidUTF8IsKeptByteExactViaLatin1() {
        let raw: [UInt8] = [0x20, 0x82, 0xA0, 0x41, 0xFF]   // Shift_JIS-ish, not UTF-8
        let f = HeaderField(name: "Content-Description", rawValue: raw)
        #expect(f.isLatin1Fallback)
        #expect(f.valueBytes == raw)
        #expect(f.hasEightBitValue)
        let utf8 = HeaderField(name: "Subject", rawValue: bytes(" Grüße"))
        #expect(!utf8.isLatin1Fallback)
        #expect(utf8.value == " Grüße")
        #expect(utf8.valueBytes == bytes(" Grüße"))
    }

    @Test func lineEndsToCRLF() {
        #expect(LineEnds.toCRLF(bytes("a\nb\rc\r\nd\r")) == bytes("a\r\nb\r\nc\r\nd\r\n"))
        #expect(LineEnds.toCRLF(bytes("\n\n")) == bytes("\r\n\r\n"))
        #expect(LineEnds.toCRLF(bytes("\r\r\n")) == bytes("\r\n\r\n"))
        #expect(LineEnds.isCRLF(bytes("a\r\nb")))
        #expect(!LineEnds.isCRLF(bytes("a\nb")))
        #expect(!LineEnds.isCRLF(bytes("a\r")))
    }

    /// toCRLF on every mix of text, CR and LF: the same as replacing each CRLF, then each
    /// remaining CR, by LF and then every LF by CRLF; isCRLF exactly when nothing changes.
    @Test func lineEndsAreCompletedForEveryMix() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [UInt8(ascii: "a"), 13, 10]
        for _ in 0..<2_000 {
            let input = (0..<Int.random(in: 0...24, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            let text = String(decoding: input, as: UTF8.self)
            let expected = Array(text
                .replacingOccurrences(of: "\r\n", with: "\n")
                .replacingOccurrences(of: "\r", with: "\n")
                .replacingOccurrences(of: "\n", with: "\r\n").utf8)
            #expect(LineEnds.toCRLF(input) == expected, "\(input)")
            #expect(LineEnds.isCRLF(input) == (expected == input), "\(input)")
        }
    }
}

@Suite struct MessageSplitTests {
    @Test func splitsBareLFMessageAndCanonicalisesBody() throws {
        let (fields, body) = try splitMessage("From: a@b.example\nSubject: one\n two\nX-Empty:\n\nline 1\nline 2\n")
        #expect(fields.map(\.name) == ["From", "Subject", "X-Empty"])
        #expect(fields[1].value == " one\n two")
        #expect(fields[2].value == "")
        #expect(body == bytes("line 1\r\nline 2\r\n"))
    }

    @Test func splitsCRLFAndMixed() throws {
        let (fields, body) = try MessageParser.split(bytes("A: 1\r\nB: 2\n\r\nx\ny\r\n"))
        #expect(fields == [HeaderField(name: "A", value: " 1"), HeaderField(name: "B", value: " 2")])
        #expect(body == bytes("x\r\ny\r\n"))
    }

    @Test func skipsMboxFromLineAndAllowsSpaceBeforeColon() throws {
        let (fields, body) = try splitMessage("From someone Mon Jan  1 00:00:00 2024\nSubject : hi\n\nbody")
        #expect(fields.count == 1)
        #expect(fields[0].name == "Subject")
        #expect(fields[0].value == " hi")
        #expect(body == bytes("body"))
    }

    @Test func headerWithoutBodyAndGarbage() throws {
        let (fields, body) = try splitMessage("A: 1\nB: 2")
        #expect(fields.count == 2)
        #expect(body.isEmpty)
        #expect(throws: MIMEError.self) { try splitMessage("this is not a header\n\nbody") }
    }

    @Test func headerFieldLimit() {
        let many = (0..<20).map { "X-\($0): v\n" }.joined() + "\nbody"
        #expect(throws: MIMEError.tooManyHeaderFields(limit: 10)) {
            try MessageParser.split(bytes(many), limits: MIMELimits(maxHeaderFields: 10))
        }
    }
}
