// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Base64 (RFC 2045 §6.8) in lines.
public enum Base64Lines {
    /// Encodes `bytes` as base64 lines of `lineLength` characters (clamped to 4...996) joined by CRLF,
    /// with no line end after the last line.
    public static func encode<C: Collection>(_ bytes: C, lineLength: Int = 76) -> [UInt8] where C.Element == UInt8 {
        let length = min(max(lineLength, 4), 996)
        return bytes.withByteBuffer { encode(buffer: $0, lineLength: length) }
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// One pass with a table into a buffer of the final size (Foundation's Data round trip
    /// and its line options cost several copies per signature).
    private static func encode(buffer: UnsafeBufferPointer<UInt8>, lineLength: Int) -> [UInt8] {
        let flatCount = (buffer.count + 2) / 3 * 4
        let lines = flatCount == 0 ? 0 : (flatCount + lineLength - 1) / lineLength
        let total = flatCount + max(0, lines - 1) * 2
        // One line, or lines of whole groups (76, 64: what mail uses): written in one pass.
        if lines <= 1 { return encodeInLines(buffer: buffer, lineLength: .max, total: flatCount) }
        if lineLength % 4 == 0 { return encodeInLines(buffer: buffer, lineLength: lineLength, total: total) }
        // Other widths (the diagnosis re-encodes at the width a message used): cut the flat text.
        let flat = encodeInLines(buffer: buffer, lineLength: .max, total: flatCount)
        return [UInt8](unsafeUninitializedCapacity: total) { out, initialised in
            flat.withUnsafeBufferPointer { source in
                var o = 0
                var i = 0
                while i < flatCount {
                    if i > 0 { out[o] = 0x0D; out[o + 1] = 0x0A; o += 2 }
                    let n = min(lineLength, flatCount - i)
                    UnsafeMutableRawPointer(out.baseAddress! + o).copyMemory(from: source.baseAddress! + i, byteCount: n)
                    o += n
                    i += n
                }
                initialised = o
            }
        }
    }

    /// The groups of `buffer` with CRLF after every `lineLength` characters (a multiple of four,
    /// or `.max` for one line); `total` is the exact size.
    private static func encodeInLines(buffer: UnsafeBufferPointer<UInt8>, lineLength: Int, total: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: total) { out, initialised in
            alphabet.withUnsafeBufferPointer { table in
                // Raw pointers held in locals, one 32-bit store per group: through the inout
                // buffer every byte store reloaded its base (43 instructions per group).
                guard let t = table.baseAddress, let src = buffer.baseAddress, let start = out.baseAddress else {
                    initialised = 0
                    return
                }
                let count = buffer.count
                var dst = UnsafeMutableRawPointer(start)
                var i = 0
                var column = 0
                @inline(__always) func group(_ v: UInt32) -> UInt32 {
                    UInt32(t[Int(v >> 18)]) | UInt32(t[Int(v >> 12 & 63)]) << 8
                        | UInt32(t[Int(v >> 6 & 63)]) << 16 | UInt32(t[Int(v & 63)]) << 24
                }
                while i + 3 <= count {
                    if column == lineLength {
                        dst.storeBytes(of: 0x0D, as: UInt8.self)
                        (dst + 1).storeBytes(of: 0x0A, as: UInt8.self)
                        dst += 2
                        column = 0
                    }
                    let v = UInt32(src[i]) << 16 | UInt32(src[i + 1]) << 8 | UInt32(src[i + 2])
                    dst.storeBytes(of: group(v).littleEndian, as: UInt32.self)
                    dst += 4
                    i += 3
                    column += 4
                }
                let rest = count - i
                if rest > 0 {
                    if column == lineLength {
                        dst.storeBytes(of: 0x0D, as: UInt8.self)
                        (dst + 1).storeBytes(of: 0x0A, as: UInt8.self)
                        dst += 2
                    }
                    let v = UInt32(src[i]) << 16 | (rest == 2 ? UInt32(src[i + 1]) << 8 : 0)
                    var word = group(v)
                    // "=" in place of the characters no input bits reached.
                    word = rest == 2 ? (word & 0x00FF_FFFF) | 0x3D00_0000 : (word & 0x0000_FFFF) | 0x3D3D_0000
                    dst.storeBytes(of: word.littleEndian, as: UInt32.self)
                    dst += 4
                }
                initialised = dst - UnsafeMutableRawPointer(start)
            }
        }
    }

    /// The result of a tolerant decode.
    public struct Decoded: Sendable, Equatable {
        /// The decoded bytes.
        public let bytes: [UInt8]
        /// Characters that are neither base64 nor white space (ignored), plus data after padding.
        public let garbageCount: Int
        /// A final group was incomplete (missing padding or truncated data).
        public let wasTruncated: Bool
    }

    /// Decodes base64, ignoring white space and line ends, skipping and counting any other
    /// character, and tolerating missing padding.
    public static func decode<C: Collection>(_ bytes: C) -> Decoded where C.Element == UInt8 {
        bytes.withByteBuffer(decode(buffer:))
    }

    /// The value of each base64 character; 0xFF for white space and line ends, 0xFE for `=`,
    /// 0xFD for anything else.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFD, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(c)] = UInt8(i)
        }
        for c in [Byte.space, Byte.tab, Byte.cr, Byte.lf] { table[Int(c)] = 0xFF }
        table[Int(Byte.equals)] = 0xFE
        return table
    }()

    /// What the pass over the characters leaves: the bytes written, the characters skipped,
    /// whether `=` was seen, and the sextets of an unfinished group.
    private struct Pass {
        var written = 0
        var garbage = 0
        var sawPadding = false
        var accumulator: UInt32 = 0
        var pending = 0
    }

    /// The decoder proper: one pass into a buffer of the largest possible size (`Array.append`
    /// per byte was a third of the cost: callgrind); the unfinished group is completed here.
    private static func decode(buffer: UnsafeBufferPointer<UInt8>) -> Decoded {
        var pass = Pass()
        var out = [UInt8](unsafeUninitializedCapacity: buffer.count / 4 * 3 + 3) { out, initialised in
            pass = decodeGroups(buffer, into: out)
            initialised = pass.written
        }
        var truncated = false
        switch pass.pending {
        case 1:                        // six lone bits cannot form a byte
            truncated = true
        case 2:
            out.append(UInt8(truncatingIfNeeded: pass.accumulator >> 4))
            truncated = !pass.sawPadding
        case 3:
            out.append(UInt8(truncatingIfNeeded: pass.accumulator >> 10))
            out.append(UInt8(truncatingIfNeeded: pass.accumulator >> 2))
            truncated = !pass.sawPadding
        default:
            break
        }
        return Decoded(bytes: out, garbageCount: pass.garbage, wasTruncated: truncated)
    }

    /// Runs of four base64 characters (nearly all of a line) are decoded as one group; anything
    /// else goes character by character. The state is in locals (captured from outside the
    /// closure it was kept in memory for every character). At most count/4 full groups, so the
    /// writes stay within `out`'s count/4*3 + 3 bytes.
    private static func decodeGroups(_ buffer: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>) -> Pass {
        var o = 0
        var garbage = 0, padded = false, acc: UInt32 = 0, sextets = 0
        @inline(__always) func put(_ v: UInt32) {
            out[o] = UInt8(truncatingIfNeeded: v >> 16)
            out[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
            out[o + 2] = UInt8(truncatingIfNeeded: v)
            o += 3
        }
        values.withUnsafeBufferPointer { table in
            let count = buffer.count
            var i = 0
            while i < count {
                if sextets == 0 && !padded && i + 4 <= count {
                    let a = table[Int(buffer[i])], b = table[Int(buffer[i + 1])]
                    let c = table[Int(buffer[i + 2])], d = table[Int(buffer[i + 3])]
                    if (a | b | c | d) < 64 {
                        put(UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d))
                        i += 4
                        continue
                    }
                }
                let v = table[Int(buffer[i])]
                i += 1
                if v < 64 {
                    if padded { garbage += 1; continue }
                    acc = acc << 6 | UInt32(v)
                    sextets += 1
                    if sextets == 4 {
                        put(acc)
                        acc = 0
                        sextets = 0
                    }
                } else if v == 0xFE {
                    padded = true
                } else if v == 0xFD {
                    garbage += 1
                }
            }
        }
        return Pass(written: o, garbage: garbage, sawPadding: padded, accumulator: acc, pending: sextets)
    }
}
