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

    /// Base64 of every length, cut into lines of every shape (so groups of four straddle line
    /// ends and blanks), decodes to what Foundation decodes; garbage is counted where it is.
    @Test func decodeMatchesFoundationWhateverTheLayout() {
        var generator = SystemRandomNumberGenerator()
        for count in 0..<300 {
            let data = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let flat = [UInt8](Data(data).base64EncodedData())
            var laidOut: [UInt8] = []
            var garbage = 0
            for (n, c) in flat.enumerated() {
                laidOut.append(c)
                switch Int.random(in: 0..<12, using: &generator) {
                case 0: laidOut += [13, 10]
                case 1: laidOut.append(32)
                case 2: laidOut.append(UInt8(ascii: "*")); garbage += 1
                case 3 where n % 4 == 3: laidOut.append(9)
                default: break
                }
            }
            let decoded = Base64Lines.decode(laidOut)
            let foundation = Data(base64Encoded: Data(flat)).map { [UInt8]($0) }
            #expect(decoded.bytes == foundation, "length \(count)")
            #expect(decoded.bytes == data, "length \(count)")
            #expect(decoded.garbageCount == garbage, "length \(count)")
            #expect(!decoded.wasTruncated, "length \(count)")
            // Without padding the bytes are the same and the loss of the padding is noticed.
            let unpadded = laidOut.filter { $0 != UInt8(ascii: "=") }
            let loose = Base64Lines.decode(unpadded)
            #expect(loose.bytes == data, "length \(count) unpadded")
            #expect(loose.wasTruncated == (count % 3 != 0), "length \(count) unpadded")
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

/// LineFacts (which reads eight bytes at a time) against the definitions, on random bytes
/// drawn from everything that decides a fact: line ends in every combination, blanks, NUL,
/// 8-bit bytes, `From ` and runs long enough for the 998-octet limit.
@Suite struct LineFactsTests {
    struct Expected: Equatable {
        var eightBitOrNUL = false, longLine = false, fromLine = false, trailingWhitespace = false, bareLineBreak = false
    }

    /// Straight from the definitions: split into lines at CRLF, a lone CR or a lone LF.
    static func expected(_ bytes: [UInt8]) -> Expected {
        var e = Expected()
        e.eightBitOrNUL = bytes.contains { $0 == 0 || $0 >= 0x80 }
        var lines: [[UInt8]] = []
        var line: [UInt8] = []
        var j = 0
        while j < bytes.count {
            let b = bytes[j]
            if b == 13 && j + 1 < bytes.count && bytes[j + 1] == 10 {
                lines.append(line); line = []; j += 2
            } else if b == 13 || b == 10 {
                e.bareLineBreak = true
                lines.append(line); line = []; j += 1
            } else {
                line.append(b); j += 1
            }
        }
        lines.append(line)
        e.longLine = lines.contains { $0.count > 998 }
        e.fromLine = lines.contains { $0.starts(with: Array("From ".utf8)) }
        e.trailingWhitespace = lines.contains { $0.last == 32 || $0.last == 9 }
        return e
    }

    static func actual(_ bytes: [UInt8]) -> Expected {
        let f = LineFacts(bytes)
        return Expected(eightBitOrNUL: f.hasEightBitOrNUL, longLine: f.hasLongLine, fromLine: f.hasFromLine,
                        trailingWhitespace: f.hasTrailingWhitespace, bareLineBreak: f.hasBareLineBreak)
    }

    @Test func factsMatchTheDefinitionsOnRandomBytes() {
        var generator = SystemRandomNumberGenerator()
        let pieces: [[UInt8]] = [[13, 10], [13], [10], [32], [9], [0], [0xC3, 0xA4], [0x80], [0xFF],
                                 Array("From ".utf8), Array("abcdefgh".utf8), Array("x".utf8)]
        for round in 0..<3_000 {
            var bytes: [UInt8] = []
            // Mostly ordinary text, so whole words go past the fast path, sometimes long lines.
            let ordinaryRun = round % 10 == 0 ? 1_200 : 40
            for _ in 0..<Int.random(in: 0...30, using: &generator) {
                if Bool.random(using: &generator) {
                    bytes += (0..<Int.random(in: 0...ordinaryRun, using: &generator)).map { _ in UInt8.random(in: 0x21...0x7E, using: &generator) }
                } else {
                    bytes += pieces.randomElement(using: &generator)!
                }
            }
            #expect(Self.actual(bytes) == Self.expected(bytes), "\(bytes)")
            // The same bytes at every alignment within a word.
            if round % 50 == 0 {
                for shift in 1..<8 {
                    let shifted = [UInt8](repeating: UInt8(ascii: "y"), count: shift) + bytes
                    #expect(Self.actual(shifted) == Self.expected(shifted), "shift \(shift)")
                }
            }
        }
        #expect(Self.actual([]) == Expected())
        #expect(Self.actual(Array(repeating: UInt8(ascii: "a"), count: 999)).longLine)
        #expect(!Self.actual(Array(repeating: UInt8(ascii: "a"), count: 998)).longLine)
    }
}

@Suite struct ByteSearchTests {
    /// The first offset where the needle's bytes appear, by comparing every window.
    static func naive(_ needle: [UInt8], _ haystack: [UInt8]) -> Int? {
        guard !needle.isEmpty, needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { Array(haystack[$0..<($0 + needle.count)]) == needle }
    }

    @Test func findsTheFirstOccurrenceLikeComparingEveryWindow() {
        var generator = SystemRandomNumberGenerator()
        // A small alphabet, so partial matches and overlapping candidates are common.
        let alphabet = Array("ab-\r\n".utf8)
        for _ in 0..<3_000 {
            let haystack = (0..<Int.random(in: 0...60, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            let needle = (0..<Int.random(in: 0...5, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            let found = haystack.withUnsafeBufferPointer { ByteSearch.firstOffset(of: needle, in: $0) }
            #expect(found == Self.naive(needle, haystack), "\(needle) in \(haystack)")
            #expect(ByteSearch.contains(haystack, needle) == (found != nil))
        }
        #expect(ByteSearch.contains(Array("--boundary--".utf8), Array("--boundary--".utf8)))
        #expect(!ByteSearch.contains(Array("--boundar".utf8), Array("--boundary".utf8)))
        #expect(!ByteSearch.contains([UInt8](), Array("x".utf8)))
    }
}
