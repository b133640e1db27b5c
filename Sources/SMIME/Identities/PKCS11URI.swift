// SPDX-License-Identifier: Apache-2.0
import Foundation

/// An RFC 7512 `pkcs11:` URI naming a private key on a token, checked before OpenSSL's pkcs11
/// engine sees it.
///
/// Refused: a PIN in the URI (`pin-value`, `pin-source`: the PIN belongs in `TokenPINFile`,
/// never in a file that names the key), `module-path`/`module-name` (the module is
/// `PKCS11Module`; `module-path=` in the URI crashed openssl with libp11 0.4.12), a `type`
/// other than `private`, attributes RFC 7512 does not define (except vendor `x-` ones), bad
/// percent-encoding, and a URI naming neither `object` nor `id`.
public struct PKCS11URI: Sendable, Equatable, CustomStringConvertible {
    /// Path attributes, names lower-cased, values percent-decoded, in URI order; `id` (binary)
    /// as lower-case hexadecimal.
    public let attributes: [(name: String, value: String)]
    /// The URI as handed to the engine: the path part only (no query), as written.
    public let engineURI: String

    /// The path attributes RFC 7512 §2.3 defines.
    static let pathAttributes: Set<String> = [
        "token", "manufacturer", "serial", "model", "library-manufacturer", "library-description",
        "library-version", "object", "type", "id", "slot-description", "slot-manufacturer", "slot-id",
    ]

    /// Parses and checks `text`; the error says what is wrong and never repeats a PIN.
    public init(_ text: String) throws(IdentityProblem) {
        func bad(_ reason: String) -> IdentityProblem { IdentityProblem(file: "pkcs11 URI", reason: reason) }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.lowercased().hasPrefix("pkcs11:") else { throw bad("does not start with pkcs11:") }
        guard !trimmed.contains(where: { $0.isWhitespace }) else { throw bad("contains white space") }
        let rest = trimmed.dropFirst("pkcs11:".count)
        let path: Substring
        let query: Substring?
        if let mark = rest.firstIndex(of: "?") {
            path = rest[..<mark]
            query = rest[rest.index(after: mark)...]
        } else {
            path = rest
            query = nil
        }
        for item in (query ?? "").split(separator: "&", omittingEmptySubsequences: true) {
            let name = item.split(separator: "=", maxSplits: 1).first.map { $0.lowercased() } ?? ""
            switch name {
            case "pin-value", "pin-source":
                throw bad("\(name) is not allowed: put the PIN in the file named by TokenPINFile")
            case "module-path", "module-name":
                throw bad("\(name) is not allowed: choose the module with PKCS11Module")
            default:
                throw bad("query attribute \"\(name)\" is not supported")
            }
        }
        var found: [(name: String, value: String)] = []
        for item in path.split(separator: ";", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else { throw bad("\"\(item)\" is not name=value") }
            let name = parts[0].lowercased()
            guard Self.pathAttributes.contains(name) || name.hasPrefix("x-") else {
                throw bad("unknown attribute \"\(name)\"")
            }
            guard !found.contains(where: { $0.name == name }) else { throw bad("attribute \"\(name)\" appears twice") }
            guard let bytes = Self.percentDecoded(parts[1]),
                  let value = name == "id" ? bytes.map({ String(format: "%02x", $0) }).joined()
                                           : String(validating: bytes, as: UTF8.self) else {
                throw bad("attribute \"\(name)\" has bad percent-encoding")
            }
            found.append((name, value))
        }
        if let type = found.first(where: { $0.name == "type" })?.value, type != "private" {
            throw bad("type=\(type): a signing identity needs type=private")
        }
        guard found.contains(where: { $0.name == "object" || $0.name == "id" }) else {
            throw bad("names no key: give object= (the label) or id=")
        }
        attributes = found
        engineURI = "pkcs11:" + path
    }

    /// The decoded value of attribute `name`, if present.
    public func value(_ name: String) -> String? {
        attributes.first { $0.name == name }?.value
    }

    /// The URI as written (path part): it holds no secret.
    public var description: String { engineURI }

    public static func == (a: PKCS11URI, b: PKCS11URI) -> Bool { a.engineURI == b.engineURI }

    /// Percent-decodes `text`; nil on a bad escape.
    static func percentDecoded(_ text: Substring) -> [UInt8]? {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let first = utf8.index(after: index)
                guard first < utf8.endIndex else { return nil }
                let second = utf8.index(after: first)
                guard second < utf8.endIndex,
                      let high = hexValue(utf8[first]), let low = hexValue(utf8[second]) else { return nil }
                bytes.append(high << 4 | low)
                index = utf8.index(after: second)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return bytes
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
