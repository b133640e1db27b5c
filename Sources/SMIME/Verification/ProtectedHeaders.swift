// SPDX-License-Identifier: Apache-2.0
import MIME

/// The header fields a signature protects (RFC 9788): the header section of the signed
/// content's root part when its Content-Type has the `hp` parameter, or the header of the
/// message inside a `message/rfc822; forwarded=no` wrapper (the RFC 8551 §3.1 form).
///
/// Outer header fields are not covered by any signature (RFC 1847 §2.1); these are. The policy
/// compares them with the outer ones (`Policy.HeaderProtection`).
public struct ProtectedHeaders: Sendable, Equatable {
    /// How the sender protected its header fields.
    public enum Form: String, Sendable, Equatable {
        /// `hp="clear"` on the signed part (RFC 9788 §2.1, signed-only mail).
        case clear = "hp=clear"
        /// `hp="cipher"` (the part was encrypted; seen here only after decryption elsewhere).
        case cipher = "hp=cipher"
        /// The legacy wrapper: `message/rfc822; forwarded=no` holding the whole message.
        case wrapper = "message/rfc822 wrapper"
    }

    public var form: Form
    /// The protected fields other than `Content-*` and `MIME-Version`, in order, values as written.
    public var fields: [HeaderField]

    public init(form: Form, fields: [HeaderField]) {
        self.form = form
        self.fields = fields
    }

    /// The protected header of the signed entity `signed`, or nil when it carries none. A
    /// `message/rfc822` without `forwarded=no` is a forwarded message, someone else's header.
    public static func of(_ signed: MIMEEntity) -> ProtectedHeaders? {
        let type = signed.contentType
        if let hp = type.parameter("hp")?.lowercased(), hp == "clear" || hp == "cipher" {
            return ProtectedHeaders(form: hp == "clear" ? .clear : .cipher, fields: messageFields(signed.fields))
        }
        if type.mediaType == "message/rfc822", type.parameter("forwarded")?.lowercased() == "no",
           let inner = signed.encapsulatedMessage {
            return ProtectedHeaders(form: .wrapper, fields: messageFields(inner.fields))
        }
        return nil
    }

    static func messageFields(_ fields: [HeaderField]) -> [HeaderField] {
        fields.filter {
            let name = $0.name.lowercased()
            return !name.hasPrefix("content-") && name != "mime-version"
        }
    }
}
