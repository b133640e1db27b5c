// SPDX-License-Identifier: Apache-2.0
/// Reads a header section out of a byte buffer (line ends CRLF or bare LF, mixed allowed).
enum HeaderParser {
    struct Result {
        var fields: [HeaderField]
        /// The field lines, each with its own line end; ends where the blank line (if any) starts.
        var headerRange: Range<Int>
        /// Where the body starts: after the blank line, or at the first line that is not a field.
        var bodyStart: Int
        /// The first line that ended the header was neither blank nor a field (no blank line).
        var endedByNonFieldLine: Bool
        /// A blank line separated header and body.
        var hadBlankLine: Bool
    }

    /// Parses the header section starting at `range.lowerBound`.
    ///
    /// A line that is neither a field, a continuation nor blank ends the header without a blank line
    /// (the body starts at that line). A header that runs to the end of the range has an empty body.
    static func parse(_ buf: [UInt8], in range: Range<Int>, limits: MIMELimits) throws -> Result {
        var fields = [HeaderField]()
        var current: (name: String, valueStart: Int, valueEnd: Int)?
        var pos = range.lowerBound
        let end = range.upperBound

        func flush() {
            if let c = current {
                fields.append(HeaderField(name: c.name, rawValue: buf[c.valueStart..<c.valueEnd]))
                current = nil
            }
        }

        while pos < end {
            // One line: buf[pos..<contentEnd], terminator up to next.
            var lf = pos
            while lf < end && buf[lf] != Byte.lf { lf += 1 }
            var contentEnd = lf
            if contentEnd > pos && buf[contentEnd - 1] == Byte.cr { contentEnd -= 1 }
            let next = lf < end ? lf + 1 : end

            if contentEnd == pos {
                flush()
                return Result(fields: fields, headerRange: range.lowerBound..<pos, bodyStart: next,
                              endedByNonFieldLine: false, hadBlankLine: true)
            }
            if Byte.isWSP(buf[pos]), current != nil {
                current?.valueEnd = contentEnd          // continuation: the fold stays in the value
                pos = next
                continue
            }
            if let colon = fieldNameEnd(buf, from: pos, to: contentEnd) {
                flush()
                if fields.count >= limits.maxHeaderFields {
                    throw MIMEError.tooManyHeaderFields(limit: limits.maxHeaderFields)
                }
                var nameEnd = colon
                while nameEnd > pos && Byte.isWSP(buf[nameEnd - 1]) { nameEnd -= 1 }   // obs "Name :"
                let name = String(decoding: buf[pos..<nameEnd], as: UTF8.self)
                current = (name, colon + 1, contentEnd)
                pos = next
                continue
            }
            flush()
            return Result(fields: fields, headerRange: range.lowerBound..<pos, bodyStart: pos,
                          endedByNonFieldLine: true, hadBlankLine: false)
        }
        flush()
        return Result(fields: fields, headerRange: range.lowerBound..<end, bodyStart: end,
                      endedByNonFieldLine: false, hadBlankLine: false)
    }

    /// The index of the colon when the line starts with a field name (RFC 5322 ftext, then
    /// optional white space, then a colon), else nil.
    private static func fieldNameEnd(_ buf: [UInt8], from: Int, to: Int) -> Int? {
        var i = from
        while i < to, buf[i] >= 33, buf[i] <= 126, buf[i] != Byte.colon { i += 1 }
        if i == from { return nil }
        while i < to && Byte.isWSP(buf[i]) { i += 1 }
        return i < to && buf[i] == Byte.colon ? i : nil
    }
}
