// SPDX-License-Identifier: Apache-2.0
import SMIME

/// Sample entities and whole messages for the signing tests.
enum Samples {
    /// A small text/plain entity with CRLF line ends.
    static let text: [UInt8] = Array((
        "Content-Type: text/plain; charset=us-ascii\r\n"
        + "Content-Transfer-Encoding: 7bit\r\n"
        + "\r\n"
        + "Hello Bob,\r\n"
        + "\r\n"
        + "this message is signed.\r\n"
        + "--\r\n"
        + "Alice\r\n"
    ).utf8)

    /// A 7-bit multipart/mixed entity with a base64 attachment.
    static let multipart: [UInt8] = Array((
        "Content-Type: multipart/mixed; boundary=\"inner-boundary\"\r\n"
        + "\r\n"
        + "This is a multi-part message in MIME format.\r\n"
        + "--inner-boundary\r\n"
        + "Content-Type: text/plain; charset=utf-8\r\n"
        + "Content-Transfer-Encoding: quoted-printable\r\n"
        + "\r\n"
        + "Gr=C3=BC=C3=9Fe, see the attachment.\r\n"
        + "--inner-boundary\r\n"
        + "Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
        + "Content-Transfer-Encoding: base64\r\n"
        + "Content-Disposition: attachment; filename=\"data.bin\"\r\n"
        + "\r\n"
        + "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n"
        + "--inner-boundary--\r\n"
    ).utf8)

    /// Outer header fields that are not signed.
    static let outerHeader = "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\n"
        + "Subject: signed test\r\nMIME-Version: 1.0\r\n"

    /// A whole multipart/signed message: detached signature over `entity`.
    static func multipartSignedMessage(entity: [UInt8], identity: SigningIdentity,
                                       digest: DigestAlgorithm) throws -> (message: [UInt8], signature: [UInt8]) {
        let signature = try CMSSigner.sign(content: entity, identity: identity, digest: digest, detached: true)
        let wrapped = try SMIMEWriter.multipartSigned(entity: entity, signature: signature, digest: digest)
        let header = outerHeader + "Content-Type: " + wrapped.contentType + "\r\n\r\n"
        return (Array(header.utf8) + wrapped.body, signature)
    }

    /// A whole opaque signed message (application/pkcs7-mime; smime-type=signed-data).
    static func opaqueMessage(entity: [UInt8], identity: SigningIdentity,
                              digest: DigestAlgorithm) throws -> (message: [UInt8], signedData: [UInt8]) {
        let signedData = try CMSSigner.sign(content: entity, identity: identity, digest: digest, detached: false)
        let wrapped = SMIMEWriter.opaque(signedData: signedData)
        let header = outerHeader
            + "Content-Type: " + wrapped.contentType + "\r\n"
            + "Content-Transfer-Encoding: " + wrapped.contentTransferEncoding + "\r\n"
            + "Content-Disposition: " + wrapped.contentDisposition + "\r\n\r\n"
        return (Array(header.utf8) + wrapped.body, signedData)
    }
}
