// SPDX-License-Identifier: Apache-2.0
extension SMIMEWriter {
    /// The header values and body of an encrypted message (RFC 8551 §3.3, §3.4): an
    /// application/pkcs7-mime entity with smime-type=enveloped-data (or authEnveloped-data for
    /// AuthEnvelopedData), base64 in 76-column CRLF lines, named smime.p7m.
    ///
    /// - Parameters:
    ///   - der: the ContentInfo from `CMSEncryptor.encrypt`.
    ///   - authenticated: true when it is AuthEnvelopedData (`ContentCipher.isAuthenticated`).
    public static func enveloped(der: [UInt8], authenticated: Bool)
        -> (contentType: String, contentTransferEncoding: String, contentDisposition: String, body: [UInt8]) {
        var body = base64Lines(der)
        body += [0x0D, 0x0A]
        let type = authenticated ? "authEnveloped-data" : "enveloped-data"
        return ("application/pkcs7-mime; smime-type=\(type); name=\"smime.p7m\"", "base64",
                "attachment; filename=\"smime.p7m\"", body)
    }
}
