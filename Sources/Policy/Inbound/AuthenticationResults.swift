// SPDX-License-Identifier: Apache-2.0
import MIME
import SMIME

/// Writing our `Authentication-Results` header field (RFC 8601 §2.2, method `smime` of
/// RFC 7281) and reading the authserv-id of fields already in a message (for RFC 8601 §5).
public enum AuthenticationResults {
    /// The field name.
    public static let fieldName = "Authentication-Results"

    /// Lines are folded before they pass this length (RFC 5322 §2.1.1 SHOULD).
    static let lineLength = 78
    /// Longest comment we write; longer reasons are cut (the log line has the whole reason).
    static let maximumCommentLength = 200
    /// Longest property value we write.
    static let maximumValueLength = 256

    /// The field value (after the colon, with its leading space), folded with "\n\t":
    ///
    ///     Authentication-Results: mx.example.net;
    ///     	smime=fail (certificate is revoked)
    ///     	body.smime-identifier=alice@example.com body.smime-part=1
    ///
    /// A result other than pass gets a comment in plain words (the report's reason, made safe
    /// for a comment), a pass only when the report has a `note` (header protection: the outer
    /// Subject differs from the signed one); an encrypted message is `smime=none (message is encrypted)` and an
    /// unsigned one plain `smime=none`. Properties: `body.smime-identifier`,
    /// `body.smime-part`, and `body.smime-serial` with `body.smime-issuer` when the report has
    /// both (RFC 7281 §3.2 says both or neither), each written as a token, an address or a
    /// quoted string as RFC 8601 `pvalue` allows.
    public static func value(authservID: String, report: VerificationReport) -> String {
        let tokens = resultTokens(for: report)
        // The authserv-id always stands alone on the first line, as OpenDKIM writes it: a
        // column at the line's end folds before the first token.
        return " " + authservID + ";" + HeaderFolding.fold(tokens, column: lineLength, lineLength: lineLength)
    }

    /// `value(authservID:report:)` with a second `smime` result for the signature of a layer
    /// that is no longer in the message as delivered: the outer signature over an envelope the
    /// gateway opened (encrypt-then-sign, a triple wrap's outer layer). Its comment says so, so
    /// that nobody takes it for a signature on the plaintext.
    public static func value(authservID: String, report: VerificationReport, outerSignature: VerificationReport) -> String {
        var outer = outerSignature
        outer.isEncrypted = false
        let what = "signature over the encrypted message, removed when decrypted"
        if outer.result == .pass || outer.result == .none {
            outer.note = what
        } else {
            outer.reason = what + ": " + (outer.reason ?? defaultComment(outer.result))
        }
        var tokens = resultTokens(for: report)
        tokens[tokens.count - 1] += ";"
        tokens += resultTokens(for: outer)
        return " " + authservID + ";" + HeaderFolding.fold(tokens, column: lineLength, lineLength: lineLength)
    }

    /// The method result and its properties, one token per word of the comment so long
    /// comments fold between words: `smime=fail`, `(body`, ..., `body.smime-part=2`.
    static func resultTokens(for report: VerificationReport) -> [String] {
        var tokens: [String] = ["smime=" + report.result.rawValue]
        if let comment = comment(for: report) {
            // One token per word so long comments fold between words.
            var words = comment.split(separator: " ").map(String.init)
            if !words.isEmpty {
                words[0] = "(" + words[0]
                words[words.count - 1] += ")"
                tokens += words
            }
        }
        if let identifier = report.identifier, !identifier.isEmpty {
            tokens.append("body.smime-identifier=" + propertyValue(identifier, allowAddress: true))
        }
        if let part = report.part, !part.isEmpty {
            tokens.append("body.smime-part=" + propertyValue(part, allowAddress: false))
        }
        if let serial = report.serialHex, !serial.isEmpty, let issuer = report.issuer, !issuer.isEmpty {
            tokens.append("body.smime-serial=" + propertyValue(serial, allowAddress: false))
            tokens.append("body.smime-issuer=" + propertyValue(issuer, allowAddress: false))
        }
        return tokens
    }

    /// The result as one line, without the authserv-id: what `verify` prints per file.
    public static func resultText(for report: VerificationReport) -> String {
        resultTokens(for: report).joined(separator: " ")
    }

    /// The comment for `report`, already sanitised, or nil for pass and for unsigned mail
    /// (unless the report carries a `note`).
    static func comment(for report: VerificationReport) -> String? {
        if report.isEncrypted { return "message is encrypted" }
        switch report.result {
        case .pass, .none:
            // A pass can carry a remark (header protection: the outer Subject was changed).
            return report.note.map(sanitisedComment).flatMap { $0.isEmpty ? nil : $0 }
        case .fail, .policy, .neutral, .temperror, .permerror:
            let text = sanitisedComment(report.reason ?? "")
            return text.isEmpty ? defaultComment(report.result) : text
        }
    }

    /// Plain words for a result when the verifier gave no reason.
    static func defaultComment(_ result: SMIMEResult) -> String {
        switch result {
        case .pass: return "signature verified"
        case .fail: return "signature did not verify"
        case .none: return "message is not signed"
        case .neutral: return "signature could not be processed"
        case .policy: return "signature verified but not acceptable"
        case .temperror: return "temporary error while verifying"
        case .permerror: return "signature could not be checked"
        }
    }

    /// `text` made safe inside a comment (RFC 5322 `ctext`): control characters and line
    /// breaks become spaces, parentheses become brackets (so none is ever unbalanced), a
    /// backslash becomes a slash, non-ASCII becomes `?`, runs of blanks become one, and the
    /// result is at most `maximumCommentLength` characters.
    static func sanitisedComment(_ text: String) -> String {
        var out = ""
        var lastWasSpace = true
        var count = 0
        for scalar in text.unicodeScalars {
            var c: Character
            switch scalar {
            case "(": c = "["
            case ")": c = "]"
            case "\\": c = "/"
            default:
                if PrintableASCII.contains(scalar) { c = Character(scalar) }
                else { c = scalar.value < 0x20 || scalar.value == 0x7F ? " " : "?" }
            }
            if c == " " {
                if lastWasSpace { continue }
                lastWasSpace = true
            } else {
                lastWasSpace = false
            }
            if count == maximumCommentLength {
                out += "..."
                break
            }
            out.append(c)
            count += 1
        }
        while out.last == " " { out.removeLast() }
        return out
    }

    /// A property value as RFC 8601 `pvalue`: a token when it is one, `local@domain` when
    /// `allowAddress` and it is a plain address, else a quoted string.
    static func propertyValue(_ text: String, allowAddress: Bool) -> String {
        if isToken(text) { return text }
        if allowAddress, isPlainAddress(text) { return text }
        return quotedString(text)
    }

    /// RFC 2045 token: printable ASCII without blanks and tspecials.
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.count <= maximumValueLength
            && text.unicodeScalars.allSatisfy { ("!"..."~").contains($0) && !tspecials.contains($0) }
    }

    static let tspecials: Set<Unicode.Scalar> = ["(", ")", "<", ">", "@", ",", ";", ":", "\\", "\"", "/", "[", "]", "?", "="]

    /// `dot-atom@domain` with an ASCII domain of letters, digits and hyphens. Over the UTF-8
    /// bytes: a non-ASCII byte fails both classes, as a non-ASCII scalar did (the scalar-by-
    /// scalar version cost 20,000 instructions per message).
    static func isPlainAddress(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count <= maximumValueLength, let at = bytes.lastIndex(of: UInt8(ascii: "@")) else { return false }
        return DotAtom.matches(bytes[..<at], allowed: DotAtom.isAtext)
            && DotAtom.matches(bytes[(at + 1)...]) { DotAtom.isLetterOrDigit($0) || $0 == UInt8(ascii: "-") }
    }

    /// A quoted string of printable ASCII; `"` and `\` are escaped, anything else that cannot
    /// stand in it (control characters, non-ASCII) becomes `?`.
    static func quotedString(_ text: String) -> String {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        out.reserveCapacity(min(text.utf8.count, maximumValueLength) + 8)
        for (i, scalar) in text.unicodeScalars.enumerated() {
            if i == maximumValueLength { out += Array("...".utf8); break }
            switch scalar {
            case "\"", "\\": out.append(UInt8(ascii: "\\")); out.append(UInt8(scalar.value))
            default:
                out.append(PrintableASCII.contains(scalar) ? UInt8(scalar.value) : UInt8(ascii: "?"))
            }
        }
        out.append(UInt8(ascii: "\""))
        return String(decoding: out, as: UTF8.self)
    }

    /// The authserv-id of an `Authentication-Results` value (RFC 8601 §2.2: the first
    /// token or quoted string after optional white space and comments), or nil when there is
    /// none. A version number and whatever follows are not needed to know whose field it is.
    public static func authservID(of value: String) -> String? {
        let s = Array(value.unicodeScalars.prefix(4096))
        var i = 0
        skipCFWS(s, &i)
        guard i < s.count else { return nil }
        if s[i] == "\"" {
            var id = ""
            i += 1
            while i < s.count {
                let c = s[i]
                if c == "\\", i + 1 < s.count {
                    id.unicodeScalars.append(s[i + 1])
                    i += 2
                    continue
                }
                if c == "\"" { return id.isEmpty ? nil : id }
                if c != "\r" && c != "\n" { id.unicodeScalars.append(c) }
                i += 1
            }
            return nil  // unterminated quoted string
        }
        var id = ""
        while i < s.count {
            let c = s[i]
            if c == " " || c == "\t" || c == "\r" || c == "\n" || c == ";" || c == "(" { break }
            id.unicodeScalars.append(c)
            i += 1
        }
        return id.isEmpty ? nil : id
    }

    /// Whether the value's authserv-id is `authservID` (compared case-insensitively, as
    /// host names are).
    public static func claims(_ value: String, authservID: String) -> Bool {
        guard let id = Self.authservID(of: value) else { return false }
        return id.lowercased() == authservID.lowercased()
    }

    /// Skips white space, line breaks and (nested) comments with quoted pairs.
    static func skipCFWS(_ s: [Unicode.Scalar], _ i: inout Int) {
        while i < s.count {
            switch s[i] {
            case " ", "\t", "\r", "\n":
                i += 1
            case "(":
                var depth = 0
                while i < s.count {
                    let c = s[i]
                    if c == "\\" { i += 2; continue }
                    if c == "(" { depth += 1 }
                    if c == ")" { depth -= 1 }
                    i += 1
                    if depth == 0 { break }
                }
            default:
                return
            }
        }
    }
}
