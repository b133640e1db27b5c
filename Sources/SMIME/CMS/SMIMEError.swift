// SPDX-License-Identifier: Apache-2.0
/// An error from the S/MIME layer: a clear message plus the OpenSSL error queue text.
///
/// Never contains key material or passphrases: OpenSSL's queue is reduced to its
/// error-code texts (see `OpenSSL.drainErrors`).
public struct SMIMEError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, for callers that branch on it.
    public enum Kind: String, Sendable, Equatable {
        /// An OpenSSL call failed (see `openSSLErrors`).
        case openSSL
        /// Signing failed.
        case signingFailed
        /// An input exceeds what the C API can take.
        case inputTooLarge
        /// A caller-supplied MIME boundary is unusable.
        case invalidBoundary
        /// A certificate could not be parsed.
        case invalidCertificate
        /// A PKCS#11 token did not answer, lost its session or has no such key (temporary).
        case tokenUnavailable
        /// A PKCS#11 token refused the PIN; it is not tried again until a reload.
        case tokenPINRefused
        /// Encrypting (CMS EnvelopedData/AuthEnvelopedData) failed.
        case encryptionFailed
    }

    /// The category of the error.
    public let kind: Kind
    /// A human-readable message without the OpenSSL details.
    public let message: String
    /// The drained OpenSSL error queue, oldest first (may be empty).
    public let openSSLErrors: [String]

    /// Makes an error; `openSSLErrors` is normally `OpenSSL.drainErrors()`.
    public init(_ kind: Kind, _ message: String, openSSLErrors: [String] = []) {
        self.kind = kind
        self.message = message
        self.openSSLErrors = openSSLErrors
    }

    /// The message followed by the OpenSSL errors, if any.
    public var description: String {
        openSSLErrors.isEmpty ? message : message + " (OpenSSL: " + openSSLErrors.joined(separator: "; ") + ")"
    }
}
