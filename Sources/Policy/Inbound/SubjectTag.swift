// SPDX-License-Identifier: Apache-2.0
import MIME

/// Putting a tag such as `[signed]` in front of a Subject (for clients that show nothing of
/// S/MIME), and taking a forged one away.
///
/// A value is "tagged" when its text, with RFC 2047 encoded-words decoded and folds and
/// leading blanks removed, starts with the tag (case-insensitively); such a subject is never
/// tagged again. The tag goes in as plain text before the subject's first word, followed by
/// a space, so an encoded-word subject (`=?ISO-2022-JP?B?...?=`) stays valid: the tag never
/// enters an encoded-word, and the words keep their charset. A non-ASCII tag is itself
/// encoded (UTF-8).
public enum SubjectTag {
    /// Whether the Subject `value` (as received) already starts with `tag`.
    public static func isTagged(_ value: String, with tag: String) -> Bool {
        let trimmedTag = tag.trimmingBlanks()
        guard !trimmedTag.isEmpty else { return false }
        return displayText(value).lowercased().hasPrefix(trimmedTag.lowercased())
    }

    /// `value` with `tag` in front, or nil when it is already tagged (or the tag is empty).
    /// `value` keeps its leading blank; a value without one gets a space, as after a colon.
    public static func tagged(_ value: String, with tag: String) -> String? {
        let trimmedTag = tag.trimmingBlanks()
        guard !trimmedTag.isEmpty, !isTagged(value, with: trimmedTag) else { return nil }
        let base = value.first == " " || value.first == "\t" ? value : " " + value
        return EncodedWord.prefix(trimmedTag, to: base)
    }

    /// A whole new Subject value holding just the tag (for a message that had no Subject).
    public static func newValue(tag: String) -> String {
        " " + EncodedWord.encode(tag.trimmingBlanks())
    }

    /// `value` without a leading `tag` written as plain text (with the blanks after it), or
    /// nil when it does not start so. A tag hidden in an encoded-word is removed by writing
    /// the decoded rest as UTF-8 encoded-words (the only way to take it out without breaking
    /// the word). Used to remove a pass tag forged by the sender of mail that did not pass.
    public static func untagged(_ value: String, tag: String) -> String? {
        let trimmedTag = tag.trimmingBlanks()
        guard !trimmedTag.isEmpty, isTagged(value, with: trimmedTag) else { return nil }
        let unfolded = value.replacingLineBreaks()
        let leading = String(unfolded.prefix { $0 == " " || $0 == "\t" })
        let rest = unfolded.dropFirst(leading.count)
        if rest.lowercased().hasPrefix(trimmedTag.lowercased()) {
            let after = rest.dropFirst(trimmedTag.count).drop { $0 == " " || $0 == "\t" }
            return " " + after
        }
        let decoded = displayText(value)
        let after = decoded.dropFirst(trimmedTag.count).drop { $0 == " " || $0 == "\t" }
        return " " + EncodedWord.encode(String(after))
    }

    /// What a reader sees: encoded-words decoded, folds removed, leading blanks dropped.
    static func displayText(_ value: String) -> String {
        let decoded = EncodedWord.decode(value.replacingLineBreaks())
        return String(decoded.drop { $0 == " " || $0 == "\t" })
    }
}

extension String {
    /// The string without leading and trailing blanks.
    func trimmingBlanks() -> String {
        String(trimBlanks(Substring(self)))
    }

    /// Folds removed (RFC 5322 §2.2.3): every CR and LF dropped, the white space after them kept.
    func replacingLineBreaks() -> String {
        String(String.UnicodeScalarView(unicodeScalars.filter { $0 != "\r" && $0 != "\n" }))
    }
}
