// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import MIME

@Suite struct QuotedPrintableTests {
    @Test func encodesSpecialCases() {
        let out = QuotedPrintable.encode(crlf("From here\n.dot\na=b \n-- \ntab\t\nend "), isText: true)
        #expect(text(out) == "=46rom here\r\n=2Edot\r\na=3Db=20\r\n--=20\r\ntab=09\r\nend=20")
        #expect(text(QuotedPrintable.encode(bytes("Fromage"), isText: true)) == "Fromage")
        #expect(text(QuotedPrintable.encode(bytes("a\r\nb"), isText: false)) == "a=0D=0Ab")
        #expect(text(QuotedPrintable.encode([0xC3, 0xA9, 0x0A], isText: true)) == "=C3=A9=0A")
    }

    @Test func softBreaksKeepLinesAt76() {
        let long = String(repeating: "x", count: 200)
        let out = QuotedPrintable.encode(bytes(long), isText: true)
        let lines = crlfLines(out)
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0.count <= 76 })
        #expect(lines[0].last == UInt8(ascii: "="))
        #expect(QuotedPrintable.decode(out) == bytes(long))
        // a line that is exactly 76 characters needs no soft break
        let exact = String(repeating: "y", count: 76)
        #expect(QuotedPrintable.encode(bytes(exact), isText: true) == bytes(exact))
    }

    @Test func fromAfterSoftBreakIsProtected() {
        let input = String(repeating: "a", count: 75) + "From x"
        let out = QuotedPrintable.encode(bytes(input), isText: true)
        #expect(!crlfLines(out).contains { $0.starts(with: bytes("From ")) })
        #expect(QuotedPrintable.decode(out) == bytes(input))
    }

    @Test func decodeIsTolerant() {
        #expect(QuotedPrintable.decode(bytes("a=3db=\r\nc=ZZ=4")) == bytes("a=bc=ZZ=4"))
        #expect(QuotedPrintable.decode(bytes("trail   \r\nsoft= \r\nx")) == bytes("trail\r\nsoftx"))
        #expect(QuotedPrintable.decode(bytes("lf=\nx\n")) == bytes("lfx\n"))
        #expect(QuotedPrintable.decode(bytes("end=")) == bytes("end"))
        #expect(QuotedPrintable.decode([0xFF, 0x3D, 0x41]) == [0xFF, 0x3D, 0x41])
    }

    @Test(arguments: [true, false])
    func roundTripsRandomBytes(isText: Bool) {
        var rng = SplitMix(state: isText ? 1 : 2)
        for round in 0..<400 {
            let length = Int.random(in: 0...600, using: &rng)
            // bias towards the interesting bytes: CR, LF, space, tab, '=', '.', "From "
            let alphabet: [UInt8] = [13, 10, 32, 9, 61, 46, 70, 114, 111, 109, 0, 255, 128]
            var input = [UInt8]()
            while input.count < length {
                if Int.random(in: 0..<4, using: &rng) == 0 {
                    input.append(alphabet.randomElement(using: &rng) ?? 0)
                } else if Int.random(in: 0..<30, using: &rng) == 0 {
                    input += bytes("\r\nFrom ")
                } else {
                    input.append(UInt8.random(in: 0...255, using: &rng))
                }
            }
            let encoded = QuotedPrintable.encode(input, isText: isText)
            #expect(QuotedPrintable.decode(encoded) == input, "round \(round)")
            #expect(encoded.allSatisfy { $0 < 0x80 && $0 != 0 })
            let lines = crlfLines(encoded)
            #expect(lines.allSatisfy { $0.count <= 76 }, "round \(round)")
            #expect(!lines.contains { $0.starts(with: bytes("From ")) || $0.first == UInt8(ascii: ".") })
            #expect(!lines.contains { $0.last == 32 || $0.last == 9 })
            #expect(LineEnds.isCRLF(encoded))
        }
    }
}

@Suite struct Base64Tests {
    @Test func encodesInCRLFLines() {
        let data = (0..<200).map { UInt8($0) }
        let out = Base64Lines.encode(data)
        let lines = crlfLines(out)
        #expect(lines.dropLast().allSatisfy { $0.count == 76 })
        #expect(lines.count == 4)
        #expect(out.suffix(2) != [13, 10])
        #expect(Base64Lines.decode(out) == .init(bytes: data, garbageCount: 0, wasTruncated: false))
        let short = Base64Lines.encode(data, lineLength: 64)
        #expect(crlfLines(short).dropLast().allSatisfy { $0.count == 64 })
        #expect(Base64Lines.decode(short).bytes == data)
    }

    /// The encoder gives Foundation's bytes, line ends included, for every length and line length.
    @Test func matchesFoundationsEncoder() {
        var generator = SystemRandomNumberGenerator()
        for count in 0..<400 {
            let data = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let foundation = [UInt8](Data(data).base64EncodedData(options: [.lineLength76Characters,
                                                                          .endLineWithCarriageReturn,
                                                                          .endLineWithLineFeed]))
            #expect(Base64Lines.encode(data) == foundation, "length \(count)")
            let flat = [UInt8](Data(data).base64EncodedData())
            for length in [4, 5, 64, 996] {
                let lines = crlfLines(Base64Lines.encode(data, lineLength: length))
                #expect(Array(lines.joined()) == flat, "length \(count), lines of \(length)")
                #expect(lines.dropLast().allSatisfy { $0.count == length })
            }
        }
    }

    @Test func decodeToleratesWhitespaceGarbageAndMissingPadding() {
        let d = Base64Lines.decode(bytes(" aGVs\r\nbG8 *!"))
        #expect(d.bytes == bytes("hello"))
        #expect(d.garbageCount == 2)
        #expect(d.wasTruncated)
        #expect(Base64Lines.decode(bytes("aGVsbG8=")).bytes == bytes("hello"))
        #expect(Base64Lines.decode(bytes("aGVsbG8=trailing")).garbageCount == 8)
        #expect(Base64Lines.decode(bytes("")).bytes.isEmpty)
        #expect(Base64Lines.decode(bytes("a")).bytes.isEmpty)
    }
}
