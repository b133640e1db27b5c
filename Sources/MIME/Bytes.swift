// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
            // Eight bytes at a time past bytes that decide nothing (most of every line); this
            // loop was the largest Swift cost of signing a 2 KB message (callgrind).
            i = Self.skipOrdinary(a, from: i, eightBitSeen: hasEightBitOrNUL)
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

    /// The offset of the first byte at or after `start` that is CR, LF, NUL or (until one has
    /// been seen) ≥ 0x80, or the end. Reads eight bytes as one word and tests all of them with
    /// the usual "has a zero byte" expression, `(x - 0x01…) & ~x & 0x80…`, which may flag
    /// bytes above the first zero but never one below it, so the lowest flag is exact.
    @inline(__always)
    static func skipOrdinary(_ a: UnsafeBufferPointer<UInt8>, from start: Int, eightBitSeen: Bool) -> Int {
        guard let base = a.baseAddress else { return start }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let eightBitMask = eightBitSeen ? 0 : highs
        @inline(__always) func zeroBytes(_ x: UInt64) -> UInt64 { (x &- ones) & ~x & highs }
        var i = start
        while i + 8 <= a.count {
            let w = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
            var flags = (w & eightBitMask) | zeroBytes(w ^ (ones &* UInt64(Byte.lf)))
                | zeroBytes(w ^ (ones &* UInt64(Byte.cr)))
            if !eightBitSeen { flags |= zeroBytes(w) }
            if flags != 0 { return i + flags.trailingZeroBitCount / 8 }
            i += 8
        }
        return i
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
    /// Each candidate first byte is found by memchr and the rest compared by memcmp (a byte
    /// loop here cost five instructions per byte of every signed message: callgrind).
    public static func firstOffset(of needle: [UInt8], in haystack: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let first = needle.first, needle.count <= haystack.count else { return nil }
        let last = haystack.count - needle.count
        return needle.withUnsafeBufferPointer { n -> Int? in
            var i = 0
            while let hit = firstOffset(of: first, in: haystack, within: i..<(last + 1)) {
                if occurs(n, at: hit, in: haystack) { return hit }
                i = hit + 1
            }
            return nil
        }
    }

    /// The offset of the first `byte` in `haystack[range]` (memchr), or nil; nil as well for a
    /// range outside the buffer.
    static func firstOffset(of byte: UInt8, in haystack: UnsafeBufferPointer<UInt8>, within range: Range<Int>) -> Int? {
        guard let base = haystack.baseAddress, range.lowerBound >= 0, range.upperBound <= haystack.count,
              !range.isEmpty, let hit = memchr(base + range.lowerBound, Int32(byte), range.count)
        else { return nil }
        return UnsafeRawPointer(hit).assumingMemoryBound(to: UInt8.self) - base
    }

    /// Whether `needle` stands at `offset` in `haystack` (memcmp); false where it would run
    /// past the end. An empty needle stands everywhere inside.
    static func occurs(_ needle: UnsafeBufferPointer<UInt8>, at offset: Int, in haystack: UnsafeBufferPointer<UInt8>) -> Bool {
        guard offset >= 0, offset <= haystack.count - needle.count else { return false }
        guard let base = haystack.baseAddress, let needleBase = needle.baseAddress else { return true }
        return memcmp(base + offset, needleBase, needle.count) == 0
    }
}
