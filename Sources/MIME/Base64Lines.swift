import Foundation

/// Base64 (RFC 2045 §6.8) in lines, using Foundation's codec.
public enum Base64Lines {
    /// Encodes `bytes` as base64 lines of `lineLength` characters (clamped to 4...996) joined by CRLF,
    /// with no line end after the last line.
    public static func encode<C: Collection>(_ bytes: C, lineLength: Int = 76) -> [UInt8] where C.Element == UInt8 {
        let length = min(max(lineLength, 4), 996)
        if length == 76 {
            return [UInt8](Data(bytes).base64EncodedData(options: [.lineLength76Characters,
                                                                   .endLineWithCarriageReturn,
                                                                   .endLineWithLineFeed]))
        }
        let flat = [UInt8](Data(bytes).base64EncodedData())
        var out = [UInt8]()
        out.reserveCapacity(flat.count + flat.count / length * 2)
        var i = 0
        while i < flat.count {
            if i > 0 { out.append(contentsOf: Byte.crlf) }
            out.append(contentsOf: flat[i..<min(i + length, flat.count)])
            i += length
        }
        return out
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
        var clean = [UInt8]()
        clean.reserveCapacity(bytes.count)
        var garbage = 0
        var sawPadding = false
        for b in bytes {
            switch b {
            case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2B, 0x2F:
                if sawPadding { garbage += 1 } else { clean.append(b) }
            case Byte.equals:
                sawPadding = true
            case Byte.space, Byte.tab, Byte.cr, Byte.lf:
                break
            default:
                garbage += 1
            }
        }
        let remainder = clean.count % 4
        var truncated = false
        if remainder == 1 {            // six lone bits cannot form a byte
            clean.removeLast()
            truncated = true
        } else if remainder > 0 {
            clean.append(contentsOf: [UInt8](repeating: Byte.equals, count: 4 - remainder))
            truncated = !sawPadding
        }
        let data = Data(base64Encoded: Data(clean)) ?? Data()
        return Decoded(bytes: [UInt8](data), garbageCount: garbage, wasTruncated: truncated)
    }
}
