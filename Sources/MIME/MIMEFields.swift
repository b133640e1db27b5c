// SPDX-License-Identifier: Apache-2.0
/// A parsed `Content-Type` value (RFC 2045 §5.1). Type and subtype are lower-cased.
public struct ContentType: Sendable, Equatable, CustomStringConvertible {
    /// Lower-cased top-level type (`text`, `multipart`...).
    public let type: String
    /// Lower-cased subtype.
    public let subtype: String
    /// Parameters in order, RFC 2231 continuations joined.
    public let parameters: [MIMEParameter]

    /// A content type from its parts (type and subtype are lower-cased).
    public init(type: String, subtype: String, parameters: [MIMEParameter] = []) {
        self.type = type.lowercased()
        self.subtype = subtype.lowercased()
        self.parameters = parameters
    }

    /// The RFC 2045 default: `text/plain; charset=us-ascii`.
    public static let defaultType = ContentType(type: "text", subtype: "plain",
                                                parameters: [MIMEParameter(name: "charset", value: "us-ascii")])
    /// The default inside `multipart/digest` (RFC 2046 §5.1.5).
    public static let digestDefault = ContentType(type: "message", subtype: "rfc822")

    /// Parses a field value; nil when it has no valid `type/subtype` (the caller then uses the default).
    public init?(parsing value: String) {
        var sc = StructuredScanner(value)
        guard let t = sc.token(), sc.consume("/"), let st = sc.token() else { return nil }
        self.init(type: t, subtype: st, parameters: sc.parameters())
    }

    /// `type/subtype`.
    public var mediaType: String { "\(type)/\(subtype)" }
    /// The value of a parameter (name case-insensitive).
    public func parameter(_ name: String) -> String? {
        let lower = name.lowercased()
        return parameters.first { $0.name == lower }?.value
    }
    /// The `charset` parameter as stated (never defaulted).
    public var charset: String? { parameter("charset") }
    /// The `boundary` parameter.
    public var boundary: String? { parameter("boundary") }
    /// `multipart/*`.
    public var isMultipart: Bool { type == "multipart" }
    /// `text/*`.
    public var isText: Bool { type == "text" }
    /// `message/rfc822` or `message/global` (RFC 6532): an encapsulated message to parse.
    public var isEncapsulatedMessage: Bool { type == "message" && (subtype == "rfc822" || subtype == "global") }

    public var description: String {
        ([mediaType] + parameters.map { "\($0.name)=\"\($0.value)\"" }).joined(separator: "; ")
    }
}

/// A `Content-Transfer-Encoding` value (RFC 2045 §6); the default is `7bit`.
public enum TransferEncoding: Sendable, Equatable, CustomStringConvertible {
    case sevenBit, eightBit, binary, quotedPrintable, base64
    /// Anything else (`x-uuencode`, garbage), lower-cased.
    case other(String)

    /// Parses a field value (comments and white space ignored, case-insensitive).
    public init(parsing value: String) {
        var sc = StructuredScanner(value)
        switch (sc.token() ?? "").lowercased() {
        case "7bit", "": self = .sevenBit
        case "8bit": self = .eightBit
        case "binary": self = .binary
        case "quoted-printable": self = .quotedPrintable
        case "base64": self = .base64
        case let o: self = .other(o)
        }
    }

    /// 7bit, 8bit and binary: the body is not encoded.
    public var isIdentity: Bool {
        switch self {
        case .sevenBit, .eightBit, .binary: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .sevenBit: return "7bit"
        case .eightBit: return "8bit"
        case .binary: return "binary"
        case .quotedPrintable: return "quoted-printable"
        case .base64: return "base64"
        case .other(let o): return o
        }
    }
}

/// A parsed `Content-Disposition` value (RFC 2183). `type` is lower-cased (`inline`, `attachment`).
public struct ContentDisposition: Sendable, Equatable {
    /// Lower-cased disposition type.
    public let type: String
    /// Parameters in order, RFC 2231 continuations joined.
    public let parameters: [MIMEParameter]

    /// Parses a field value; nil when there is no disposition type.
    public init?(parsing value: String) {
        var sc = StructuredScanner(value)
        guard let t = sc.token() else { return nil }
        type = t.lowercased()
        parameters = sc.parameters()
    }

    /// The value of a parameter (name case-insensitive).
    public func parameter(_ name: String) -> String? {
        let lower = name.lowercased()
        return parameters.first { $0.name == lower }?.value
    }
    /// The `filename` parameter.
    public var filename: String? { parameter("filename") }
}
