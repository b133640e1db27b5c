// SPDX-License-Identifier: Apache-2.0
/// One meaningful line of a configuration or table file: comment removed, white space trimmed.
struct TextLine: Sendable {
    /// 1-based line number in the file.
    let number: Int
    /// The line without its comment and without leading and trailing white space; never empty.
    let text: Substring

    /// The white-space separated fields of the line.
    var fields: [Substring] {
        text.split(whereSeparator: isBlank)
    }
}

/// Splits file contents into meaningful lines, OpenDKIM style.
///
/// - LF, CRLF and lone CR all end a line, so files edited on Windows work.
/// - `#` starts a comment anywhere on a line (as in OpenDKIM; there is no escape for it).
/// - Blank and comment-only lines are dropped but still counted, so numbers match an editor's.
/// - A leading byte-order mark is ignored.
func meaningfulLines(of contents: String) -> [TextLine] {
    var result: [TextLine] = []
    var number = 0
    var scalars = Substring(contents).unicodeScalars
    if scalars.first == "\u{FEFF}" {
        scalars = scalars.dropFirst()
    }
    var lineStart = scalars.startIndex
    var index = scalars.startIndex
    func emit(_ end: String.UnicodeScalarView.Index) {
        number += 1
        var line = Substring(scalars[lineStart..<end])
        if let hash = line.firstIndex(of: "#") {
            line = line[..<hash]
        }
        let trimmed = trimBlanks(line)
        if !trimmed.isEmpty {
            result.append(TextLine(number: number, text: trimmed))
        }
    }
    while index < scalars.endIndex {
        let scalar = scalars[index]
        if scalar == "\n" || scalar == "\r" {
            emit(index)
            var next = scalars.index(after: index)
            if scalar == "\r", next < scalars.endIndex, scalars[next] == "\n" {
                next = scalars.index(after: next)
            }
            index = next
            lineStart = index
        } else {
            index = scalars.index(after: index)
        }
    }
    if lineStart < scalars.endIndex {
        emit(scalars.endIndex)
    }
    return result
}

/// Space, tab and the other ASCII white space that may appear inside a line.
func isBlank(_ c: Character) -> Bool {
    c == " " || c == "\t" || c == "\u{0B}" || c == "\u{0C}"
}

/// `text` without leading and trailing blanks.
func trimBlanks(_ text: Substring) -> Substring {
    guard let first = text.firstIndex(where: { !isBlank($0) }),
          let last = text.lastIndex(where: { !isBlank($0) }) else {
        return text[text.endIndex...]
    }
    return text[first...last]
}

/// Splits a list written as `a, b c,d` into its items (commas and/or blanks separate them).
func listItems(_ text: some StringProtocol) -> [Substring] {
    Substring(text).split(whereSeparator: { $0 == "," || isBlank($0) })
}
