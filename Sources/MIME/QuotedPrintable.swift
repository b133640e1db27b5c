// SPDX-License-Identifier: Apache-2.0
/// Quoted-printable (RFC 2045 §6.7).
public enum QuotedPrintable {
    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// Encodes `bytes` as quoted-printable with CRLF line ends.
    ///
    /// - Every output line is at most 76 characters, the soft line break `=` included.
    /// - `isText`: CRLF pairs in the input are hard line breaks; bare CR and bare LF are encoded
    ///   (`=0D`, `=0A`) so decoding gives back the exact bytes. When false, every CR and LF is
    ///   encoded and the output has only soft line breaks.
    /// - Space and tab before a line end (or at the end of the data) become `=20`/`=09`; `=` and all
    ///   bytes outside 33...126 are encoded.
    /// - Signature protection (RFC 8551 §3.1.4, RFC 2049 §3): an output line never starts with
    ///   `From ` (the `F` becomes `=46`) or with `.` (becomes `=2E`, against broken dot handling).
    public static func encode<C: Collection>(_ bytes: C, isText: Bool) -> [UInt8] where C.Element == UInt8 {
        let input = Array(bytes)
        let n = input.count
        var out = [UInt8]()
        out.reserveCapacity(n + n / 4 + 8)
        var column = 0

        func isHardBreak(at j: Int) -> Bool {
            isText && j + 1 < n && input[j] == Byte.cr && input[j + 1] == Byte.lf
        }
        func startsFrom(at j: Int) -> Bool {
            j + 4 < n && input[j] == 0x46 && input[j + 1] == 0x72 && input[j + 2] == 0x6F
                && input[j + 3] == 0x6D && input[j + 4] == Byte.space
        }
        /// Whether the byte at `j` may stay literal when it starts an output line.
        func literalAtLineStart(_ j: Int) -> Bool {
            !(input[j] == 0x2E || (input[j] == 0x46 && startsFrom(at: j)))
        }

        var i = 0
        while i < n {
            if isHardBreak(at: i) {
                out.append(contentsOf: Byte.crlf)
                column = 0
                i += 2
                continue
            }
            let b = input[i]
            let endsLine = i + 1 == n || isHardBreak(at: i + 1)
            var literal: Bool
            switch b {
            case 33...60, 62...126: literal = true
            case Byte.space, Byte.tab: literal = !endsLine
            default: literal = false
            }
            if literal && column == 0 && !literalAtLineStart(i) { literal = false }
            var width = literal ? 1 : 3
            // Keep room for the soft break `=` unless this is the last token of the line.
            if column + width > (endsLine ? 76 : 75) {
                out.append(contentsOf: [Byte.equals, Byte.cr, Byte.lf])
                column = 0
                if literal && !literalAtLineStart(i) { literal = false; width = 3 }
            }
            if literal {
                out.append(b)
            } else {
                out.append(Byte.equals)
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 0x0F)])
            }
            column += width
            i += 1
        }
        return out
    }

    /// Decodes quoted-printable, tolerating bad input: `=` not followed by two hex digits or a line
    /// end stays a literal `=`, lower-case hex is accepted, white space after a soft break `=` is
    /// ignored, and literal trailing white space on a line is removed (RFC 2045 §6.7 rule 3). Line
    /// ends (CRLF or bare LF) are kept as they are.
    public static func decode<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        let input = Array(bytes)
        let n = input.count
        var out = [UInt8]()
        out.reserveCapacity(n)
        var pendingWhitespace = [UInt8]()
        var i = 0
        while i < n {
            let b = input[i]
            if Byte.isWSP(b) {
                pendingWhitespace.append(b)
                i += 1
                continue
            }
            if b == Byte.cr || b == Byte.lf {
                pendingWhitespace.removeAll()   // trailing white space was added in transport
                out.append(b)
                i += 1
                continue
            }
            out.append(contentsOf: pendingWhitespace)
            pendingWhitespace.removeAll()
            if b == Byte.equals {
                if i + 2 < n, let h = RFC2231.hex(input[i + 1]), let l = RFC2231.hex(input[i + 2]) {
                    out.append(h << 4 | l)
                    i += 3
                    continue
                }
                var j = i + 1
                while j < n && Byte.isWSP(input[j]) { j += 1 }
                if j == n { i = n; continue }                                  // soft break at the end
                if input[j] == Byte.lf { i = j + 1; continue }                 // soft break, bare LF
                if input[j] == Byte.cr {
                    i = (j + 1 < n && input[j + 1] == Byte.lf) ? j + 2 : j + 1  // soft break, CRLF (or CR)
                    continue
                }
                out.append(b)                                                  // stray `=`
                i += 1
                continue
            }
            out.append(b)
            i += 1
        }
        return out
    }
}
