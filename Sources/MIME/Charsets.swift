// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Decoding text in a named charset, for display names and RFC 2231/2047 values only (bodies are
/// never converted: charsets of signed content never change).
enum Charsets {
    /// Decodes `bytes` as `charset`; unknown charsets and invalid data fall back to UTF-8 when valid,
    /// else ISO-8859-1, so the call never fails.
    static func decode(_ bytes: [UInt8], charset: String) -> String {
        var name = charset.lowercased()
        if let star = name.firstIndex(of: "*") { name = String(name[..<star]) }   // RFC 2231 language
        if let enc = encoding(for: name), let s = String(data: Data(bytes), encoding: enc) { return s }
        return HeaderText.decode(bytes).text
    }

    private static func encoding(for name: String) -> String.Encoding? {
        switch name {
        case "utf-8", "utf8": return .utf8
        case "us-ascii", "ascii": return .utf8   // superset; 8-bit bytes then fall back to Latin-1
        case "iso-8859-1", "latin1", "iso8859-1": return .isoLatin1
        case "iso-8859-2", "latin2": return .isoLatin2
        case "windows-1252", "cp1252": return .windowsCP1252
        case "windows-1250", "cp1250": return .windowsCP1250
        case "windows-1251", "cp1251": return .windowsCP1251
        case "shift_jis", "shift-jis", "sjis", "cp932", "windows-31j": return .shiftJIS
        case "euc-jp": return .japaneseEUC
        case "iso-2022-jp": return .iso2022JP
        case "utf-16": return .utf16
        default: return nil
        }
    }
}
