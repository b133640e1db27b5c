// SPDX-License-Identifier: Apache-2.0
import MIME

/// Where the S/MIME layer of a message is: the outermost signature (or encryption) found by a
/// pre-order walk of the MIME tree.
///
/// The walk descends into multiparts (so a signed part wrapped by a mailing list in a
/// multipart/mixed with header and footer parts is found), but not into `message/rfc822`
/// parts: a forwarded message is someone else's message, not a signature on this one.
enum SignatureLocator {
    /// The S/MIME layer found.
    enum Found {
        /// multipart/signed with a pkcs7 protocol: the entity, part 1 (signed) and part 2 (signature).
        case detached(entity: MIMEEntity, signed: MIMEEntity, signature: MIMEEntity)
        /// multipart/signed with a pkcs7 protocol but not exactly two parts.
        case brokenDetached(entity: MIMEEntity, partCount: Int)
        /// application/pkcs7-mime (or octet-stream named .p7m): signed-data, enveloped-data, ...
        case pkcs7Mime(entity: MIMEEntity)
    }

    /// The outermost S/MIME entity, or nil when the message has none. Bounded by the size of
    /// the tree, which the parser's limits bound.
    static func locate(_ root: MIMEEntity) -> Found? {
        var stack = [root]
        while let entity = stack.popLast() {
            let type = entity.contentType
            if type.mediaType == "multipart/signed", isPKCS7SignatureProtocol(type.parameter("protocol")) {
                let parts = entity.parts
                guard parts.count == 2 else { return .brokenDetached(entity: entity, partCount: parts.count) }
                return .detached(entity: entity, signed: parts[0], signature: parts[1])
            }
            if isPKCS7Mime(entity) { return .pkcs7Mime(entity: entity) }
            if case .multipart(let m) = entity.content { stack.append(contentsOf: m.parts.reversed()) }
        }
        return nil
    }

    static func isPKCS7SignatureProtocol(_ value: String?) -> Bool {
        guard let value = value?.lowercased() else { return false }
        return value == "application/pkcs7-signature" || value == "application/x-pkcs7-signature"
    }

    /// application/(x-)pkcs7-mime, or application/octet-stream with a .p7m name (RFC 8551 §3.10).
    static func isPKCS7Mime(_ entity: MIMEEntity) -> Bool {
        let type = entity.contentType
        if type.mediaType == "application/pkcs7-mime" || type.mediaType == "application/x-pkcs7-mime" { return true }
        if type.mediaType == "application/octet-stream" {
            let name = (type.parameter("name") ?? entity.disposition?.filename ?? "").lowercased()
            return name.hasSuffix(".p7m")
        }
        return false
    }

    /// The IMAP section for `body.smime-part` (RFC 7281 §3.2.1): a non-multipart top level is "1".
    static func section(of entity: MIMEEntity) -> String {
        entity.section.isEmpty ? "1" : entity.section
    }
}
