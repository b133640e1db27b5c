// SPDX-License-Identifier: Apache-2.0
import MIME

/// The message after its encrypted root was opened: the inner entity's header fields (the
/// Content-* fields that replace the outer ones, and any others the sender put inside) and body.
public struct DecryptedMessage: Sendable {
    /// Every header field of the innermost decrypted entity, in order.
    public let fields: [HeaderField]
    /// Its body, CRLF line ends.
    public let body: [UInt8]
    /// The envelopes opened, outermost first (more than one for encrypted inside encrypted).
    public let layers: [DecryptedEnvelope]
}

/// Finds and opens the encryption of a message's root entity.
///
/// Only the root is opened: an application/pkcs7-mime part among other parts stays as it came,
/// because splicing its plaintext between parts the sender chose is the EFAIL attack (the
/// sender of the outer message controls what surrounds the secret). Encrypted inside encrypted
/// is opened up to `maximumLayers`; a signed layer inside is left to the verifier.
public enum MessageDecryptor {
    /// Encrypted layers opened at most (more is a `tooDeep` failure).
    public static let defaultMaximumLayers = 4

    /// Whether the root entity of the message is an envelope (EnvelopedData or
    /// AuthEnvelopedData), judged from its Content-Type and the DER itself; nil when not, else
    /// the DER.
    public static func envelope(fields: [HeaderField], body: [UInt8], limits: MIMELimits = MIMELimits()) -> [UInt8]? {
        guard let root = try? MIMEParser.parse(fields: fields, body: body, limits: limits) else { return nil }
        return envelope(of: root)
    }

    static func envelope(of root: MIMEEntity) -> [UInt8]? {
        guard SignatureLocator.isPKCS7Mime(root) else { return nil }
        let smimeType = root.contentType.parameter("smime-type")?.lowercased()
        if let smimeType, smimeType != "enveloped-data", smimeType != "authenveloped-data" { return nil }
        let der: [UInt8]
        switch MessageVerifier.decodeDER(root) {
        case .success(let bytes): der = bytes
        case .failure: return nil
        }
        return CMSDecryptor.isEnvelope(der) ? der : nil
    }

    /// An encrypted entity under a signed root: multipart/signed whose signed part is an
    /// envelope (encrypt-then-sign), or opaque signed-data whose content is one (the outer layer
    /// of RFC 2634's sign-encrypt-sign triple wrap). Returns the envelope entity's own header
    /// fields and body, which `decrypt(fields:body:...)` opens; the outer signature is left to the
    /// verifier. Nil for any other shape.
    public static func signedEnvelope(fields: [HeaderField], body: [UInt8],
                                      limits: MIMELimits = MIMELimits()) -> (fields: [HeaderField], body: [UInt8])? {
        guard let root = try? MIMEParser.parse(fields: fields, body: body, limits: limits) else { return nil }
        let type = root.contentType
        if type.mediaType == "multipart/signed", SignatureLocator.isPKCS7SignatureProtocol(type.parameter("protocol")) {
            let parts = root.parts
            guard parts.count == 2, envelope(of: parts[0]) != nil else { return nil }
            return (parts[0].fields, LineEnds.toCRLF(Array(parts[0].body)))
        }
        guard SignatureLocator.isPKCS7Mime(root) else { return nil }
        let smimeType = type.parameter("smime-type")?.lowercased()
        if let smimeType, smimeType != "signed-data" { return nil }
        guard case .success(let der) = MessageVerifier.decodeDER(root), let content = CMSDecryptor.signedContent(der),
              let inner = try? MIMEParser.parse(message: LineEnds.toCRLF(content), limits: limits),
              envelope(of: inner) != nil
        else { return nil }
        return (inner.fields, Array(inner.body))
    }

    /// Opens the message's encrypted root with one of `candidates`.
    ///
    /// - Returns: nil when the root is not encrypted (nothing to do).
    /// - Throws: `DecryptionFailure` when it is encrypted and cannot be opened.
    public static func decrypt(fields: [HeaderField], body: [UInt8], candidates: [SigningIdentity],
                               allowWeakCiphers: Bool = false, maximumSize: Int,
                               maximumLayers: Int = defaultMaximumLayers,
                               limits: MIMELimits = MIMELimits()) throws(DecryptionFailure) -> DecryptedMessage? {
        guard let der = envelope(fields: fields, body: body, limits: limits) else { return nil }
        var layers: [DecryptedEnvelope] = []
        var current = der
        while true {
            guard layers.count < maximumLayers else {
                throw DecryptionFailure(.tooDeep, "more than \(maximumLayers) encrypted layers")
            }
            let opened = try CMSDecryptor.decrypt(current, candidates: candidates, allowWeakCiphers: allowWeakCiphers,
                                                  maximumSize: maximumSize)
            layers.append(opened)
            let content = LineEnds.toCRLF(opened.content)
            let entity: MIMEEntity
            do {
                entity = try MIMEParser.parse(message: content, limits: limits)
            } catch {
                throw DecryptionFailure(.corrupt, "the decrypted content is not a MIME entity: \(error)")
            }
            if let inner = envelope(of: entity) {
                current = inner
                continue
            }
            return DecryptedMessage(fields: entity.fields, body: Array(entity.body), layers: layers)
        }
    }
}
