// SPDX-License-Identifier: Apache-2.0
/// The one header folder: writes a field value as words, each after a space, or after a fold
/// ("\n\t") when it would pass `lineLength`. Folds are "\n\t", the form Postfix stores without
/// a stray CR (the milter hands header values to the MTA with bare LF).
public enum HeaderFolding {
    /// `words`, each preceded by " " or, when the line would pass `lineLength`, by "\n\t".
    /// `column` is where the value starts (the field name's length plus one for the colon); a
    /// `column` of `lineLength` or more puts the first word on a line of its own. A word longer
    /// than a line stays whole.
    public static func fold(_ words: [String], column: Int, lineLength: Int = 78) -> String {
        var out = ""
        var column = column
        for word in words {
            if column + 1 + word.count > lineLength && column > 8 {
                out += "\n\t"
                column = 8
            } else {
                out += " "
                column += 1
            }
            out += word
            column += word.count
        }
        return out
    }

    /// A structured value (`type/subtype; name=value; ...`) with its leading space, folded
    /// after a "; " where a line would pass 78 characters.
    public static func fold(parameters value: String, nameLength: Int = 12) -> String {
        // Split at "; " on the UTF-8 bytes (ASCII never occurs inside a multi-byte sequence);
        // the string-separator split of the standard library cost more than the rest of the fold.
        var words: [String] = []
        let bytes = Array(value.utf8)
        var start = 0
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 0x3B && bytes[i + 1] == 0x20 {
                words.append(String(decoding: bytes[start...i], as: UTF8.self))
                i += 2
                start = i
            } else {
                i += 1
            }
        }
        words.append(String(decoding: bytes[start...], as: UTF8.self))
        return fold(words, column: nameLength + 1)
    }
}

/// The one printable-ASCII filter (space to tilde): for header values, SMTP replies and
/// quarantine reasons, which must hold neither control characters nor raw 8-bit bytes.
public enum PrintableASCII {
    /// Whether `scalar` is printable ASCII (space to tilde).
    public static func contains(_ scalar: Unicode.Scalar) -> Bool { (0x20...0x7E).contains(scalar.value) }

    /// `text` with every scalar that is not printable ASCII replaced by `replacement`, cut to
    /// its first `limit` scalars.
    public static func cleaned(_ text: some StringProtocol, replacement: Unicode.Scalar = " ", limit: Int = .max) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(limit).map { contains($0) ? $0 : replacement }))
    }
}
