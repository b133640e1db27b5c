// SPDX-License-Identifier: Apache-2.0
// Small byte-level helpers shared by the parsers and encoders.

enum Byte {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let dash: UInt8 = 0x2D
    static let colon: UInt8 = 0x3A
    static let equals: UInt8 = 0x3D
    static let crlf: [UInt8] = [0x0D, 0x0A]

    static func isWSP(_ b: UInt8) -> Bool { b == space || b == tab }
}

extension Collection where Element == UInt8 {
    /// Calls `body` with the bytes as one contiguous buffer, copying only when the collection is
    /// not contiguous. The byte loops run over the buffer: generic `Collection` iteration is not
    /// specialised across modules and costs a witness call per byte.
    func withByteBuffer<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        if let result = try withContiguousStorageIfAvailable(body) { return result }
        return try Array(self).withUnsafeBufferPointer(body)
    }
}

extension Array where Element == UInt8 {
    /// Appends the UTF-8 bytes of `s`.
    mutating func append(utf8 s: String) { append(contentsOf: Array(s.utf8)) }
}

/// Facts about a run of bytes that decide whether it is safe to sign as it is.
struct LineFacts {
    /// A byte ≥ 0x80 or NUL occurs (neither is allowed in 7bit data, RFC 2045 §2.7).
    var hasEightBitOrNUL = false
    /// A line (CR/LF excluded) is longer than 998 octets (RFC 5322 §2.1.1).
    var hasLongLine = false
    /// A line starts with `From ` (mbox writers escape it as `>From `).
    var hasFromLine = false
    /// A line ends with space or tab (gateways strip it).
    var hasTrailingWhitespace = false
    /// A CR or LF that is not part of a CRLF pair.
    var hasBareLineBreak = false

    /// True when the bytes can be signed as they are and survive 7-bit transport.
    var isSafeSevenBit: Bool {
        !hasEightBitOrNUL && !hasLongLine && !hasFromLine && !hasTrailingWhitespace && !hasBareLineBreak
    }

    init<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        self = bytes.withByteBuffer { LineFacts(buffer: $0) }
    }

    private init(buffer a: UnsafeBufferPointer<UInt8>) {
        let n = a.count
        var lineStart = 0
        var i = 0
        while i <= n {
            let atEnd = i == n
            let b: UInt8 = atEnd ? 0 : a[i]
            if !atEnd && b != Byte.cr && b != Byte.lf {
                if b >= 0x80 || b == 0 { hasEightBitOrNUL = true }
                i += 1
                continue
            }
            // a[lineStart..<i] is one line
            let len = i - lineStart
            if len > 998 { hasLongLine = true }
            if len >= 5, a[lineStart] == 0x46, a[lineStart + 1] == 0x72, a[lineStart + 2] == 0x6F,
               a[lineStart + 3] == 0x6D, a[lineStart + 4] == Byte.space {
                hasFromLine = true
            }
            if len > 0, Byte.isWSP(a[i - 1]) { hasTrailingWhitespace = true }
            if atEnd { break }
            if b == Byte.cr, i + 1 < n, a[i + 1] == Byte.lf {
                i += 2
            } else {
                hasBareLineBreak = true
                i += 1
            }
            lineStart = i
        }
    }
}

/// The one byte search of the project: whether, and where, a short needle (a boundary, a
/// keyword) occurs in bytes. A plain scan, over one contiguous buffer.
public enum ByteSearch {
    /// Whether `needle` occurs in `haystack`; an empty needle never does.
    public static func contains<C: Collection>(_ haystack: C, _ needle: [UInt8]) -> Bool where C.Element == UInt8 {
        haystack.withByteBuffer { firstOffset(of: needle, in: $0) != nil }
    }

    /// The offset (from the buffer's start) of the first occurrence of `needle`, or nil.
    public static func firstOffset(of needle: [UInt8], in haystack: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let first = needle.first, needle.count <= haystack.count else { return nil }
        let last = haystack.count - needle.count
        var i = 0
        while i <= last {
            if haystack[i] == first {
                var matches = true
                for k in 1..<needle.count where haystack[i + k] != needle[k] {
                    matches = false
                    break
                }
                if matches { return i }
            }
            i += 1
        }
        return nil
    }
}
