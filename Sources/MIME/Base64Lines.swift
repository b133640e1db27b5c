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
        let flat = [UInt8](unsafeUninitializedCapacity: flatCount) { out, initialised in
            alphabet.withUnsafeBufferPointer { table in
                var o = 0
                var i = 0
                while i + 3 <= buffer.count {
                    let v = Int(buffer[i]) << 16 | Int(buffer[i + 1]) << 8 | Int(buffer[i + 2])
                    out[o] = table[v >> 18]
                    out[o + 1] = table[v >> 12 & 63]
                    out[o + 2] = table[v >> 6 & 63]
                    out[o + 3] = table[v & 63]
                    o += 4
                    i += 3
                }
                let rest = buffer.count - i
                if rest > 0 {
                    let v = Int(buffer[i]) << 16 | (rest == 2 ? Int(buffer[i + 1]) << 8 : 0)
                    out[o] = table[v >> 18]
                    out[o + 1] = table[v >> 12 & 63]
                    out[o + 2] = rest == 2 ? table[v >> 6 & 63] : 0x3D
                    out[o + 3] = 0x3D
                    o += 4
                }
                initialised = o
            }
        }
        if lines <= 1 { return flat }
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

    /// The decoder proper: one pass over the buffer with a table, no intermediate copies.
    private static func decode(buffer: UnsafeBufferPointer<UInt8>) -> Decoded {
        var out = [UInt8]()
        out.reserveCapacity(buffer.count / 4 * 3 + 3)
        var garbage = 0
        var sawPadding = false
        var accumulator: UInt32 = 0
        var pending = 0   // sextets in the accumulator
        values.withUnsafeBufferPointer { table in
            for b in buffer {
                let v = table[Int(b)]
                if v < 64 {
                    if sawPadding { garbage += 1; continue }
                    accumulator = accumulator << 6 | UInt32(v)
                    pending += 1
                    if pending == 4 {
                        out.append(UInt8(truncatingIfNeeded: accumulator >> 16))
                        out.append(UInt8(truncatingIfNeeded: accumulator >> 8))
                        out.append(UInt8(truncatingIfNeeded: accumulator))
                        accumulator = 0
                        pending = 0
                    }
                } else if v == 0xFE {
                    sawPadding = true
                } else if v == 0xFD {
                    garbage += 1
                }
            }
        }
        var truncated = false
        switch pending {
        case 1:                        // six lone bits cannot form a byte
            truncated = true
        case 2:
            out.append(UInt8(truncatingIfNeeded: accumulator >> 4))
            truncated = !sawPadding
        case 3:
            out.append(UInt8(truncatingIfNeeded: accumulator >> 10))
            out.append(UInt8(truncatingIfNeeded: accumulator >> 2))
            truncated = !sawPadding
        default:
            break
        }
        return Decoded(bytes: out, garbageCount: garbage, wasTruncated: truncated)
    }
}
