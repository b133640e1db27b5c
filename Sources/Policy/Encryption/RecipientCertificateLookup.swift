// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import SMIME

/// A recipient's certificate that passed the check at the point of use.
public struct UsableRecipientCertificate: Sendable {
    public let address: String
    public let certificate: RecipientCertificate
    public let capabilities: SMIMECapabilities?
}

/// The point of use: the store's current certificate for an address, checked now with
/// `RecipientCertificateCheck`. What the binding calls at RCPT time (to classify) and at
/// end-of-message (to encrypt).
public struct RecipientCertificateLookup: Sendable {
    public let store: any RecipientCertificateStore
    public let check: RecipientCertificateCheck

    public init(store: any RecipientCertificateStore, check: RecipientCertificateCheck) {
        self.store = store
        self.check = check
    }

    /// The usable certificate for `address`, or why there is none ("no certificate",
    /// "certificate expired on ..."). Store errors are thrown (the caller tempfails).
    public func usable(for address: String, at time: Date) throws -> Result<UsableRecipientCertificate, LookupProblem> {
        let normalised = EnvelopeAddress.normalise(address).lowercased()
        guard let stored = try store.current(for: normalised) else { return .failure(LookupProblem(reason: "no certificate")) }
        let parsed: (certificate: RecipientCertificate, intermediates: [RecipientCertificate])
        do {
            parsed = try stored.parsed()
        } catch {
            return .failure(LookupProblem(reason: "the stored certificate cannot be read: \(error)"))
        }
        if let problem = check.problem(with: parsed.certificate, intermediates: parsed.intermediates, at: time) {
            return .failure(LookupProblem(reason: problem))
        }
        return .success(UsableRecipientCertificate(address: normalised, certificate: parsed.certificate,
                                                   capabilities: stored.capabilities))
    }

    /// Why a recipient has no usable certificate.
    public struct LookupProblem: Error, Sendable, Equatable {
        public let reason: String
    }
}

/// The last step of the outbound path: the (already signed) top-level entity encrypted into an
/// application/pkcs7-mime entity.
public enum MessageEncryption {
    /// Encrypts the entity made of `contentFields` (the top-level Content-* header fields as
    /// the message has them after signing) and `body`, and returns the header field values that
    /// replace them and the new body.
    ///
    /// - Parameters:
    ///   - recipients: the recipients' certificates; `archive` is added as one more recipient.
    public static func encrypt(contentFields: [HeaderField], body: [UInt8], recipients: [RecipientCertificate],
                               archive: RecipientCertificate?, cipher: ContentCipher,
                               rsaKeyTransport: RSAKeyTransport) throws
        -> (contentType: String, contentTransferEncoding: String, contentDisposition: String, body: [UInt8]) {
        var entity: [UInt8] = []
        for field in contentFields {
            // Folded values keep their folds, with CRLF line ends as in the body.
            let value = field.value.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
            entity += Array((field.name + ":" + value + "\r\n").utf8)
        }
        entity += [0x0D, 0x0A]
        entity += body
        let der = try CMSEncryptor.encrypt(content: entity, recipients: recipients + (archive.map { [$0] } ?? []),
                                           cipher: cipher, rsaKeyTransport: rsaKeyTransport)
        return SMIMEWriter.enveloped(der: der, authenticated: cipher.isAuthenticated)
    }
}
