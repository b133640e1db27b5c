// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The kind of a CMS ContentInfo (RFC 5652 §3, RFC 8551 §3.2.2).
public enum CMSContentKind: String, Sendable, Equatable {
    case signedData = "signed-data"
    case envelopedData = "enveloped-data"
    case authEnvelopedData = "authEnveloped-data"
    case compressedData = "compressed-data"
    case other = "other"
}

/// What checking one CMS SignedData found: the outcome plus the facts about the signer.
public struct CMSVerification: Sendable, Equatable {
    /// The outcome, most important problem first.
    public enum Status: Sendable, Equatable {
        /// Signature, digest and every signer's certificate chain are good.
        case verified
        /// The content digest differs from the signed messageDigest: the content was changed
        /// after signing (or the signer hashed other bytes).
        case contentAltered
        /// The signature value does not match the signed attributes and the signer's key.
        case badSignature
        /// The signature is intact but a signer certificate was refused by path validation:
        /// the OpenSSL verify error code, the depth in the chain (0 = signer) and plain words.
        case certificateRejected(code: Int, depth: Int, reason: String)
        /// A detached signature carries its own eContent that differs from the displayed
        /// content (the CVE-2018-18509 trick).
        case embeddedContentDiffers
        /// A SignedData without SignerInfos (certs-only).
        case noSigners
        /// The signer's certificate is not in the message.
        case signerCertificateMissing
        /// Not a parseable SignedData, or it cannot be checked (unsupported algorithm, ...).
        case malformed(String)
        /// A valid CMS structure of another kind (enveloped, compressed, ...).
        case notSignedData(CMSContentKind)
        /// A resource limit was exceeded (certificates, signers).
        case limitExceeded(String)
    }

    /// Facts about one SignerInfo.
    public struct Signer: Sendable, Equatable {
        /// The signer's certificate, when it was found in the message.
        public var certificate: CertificateInfo?
        /// The signed signingTime attribute, if present.
        public var signingTime: Date?
        /// The SignerInfo digestAlgorithm, OpenSSL's short name in lower case ("sha256").
        public var digestAlgorithm: String?
        /// The SignerInfo signatureAlgorithm, OpenSSL's short name ("rsaEncryption", "RSASSA-PSS").
        public var signatureAlgorithm: String?
        /// Why the algorithms or key are weak (MD5/SHA-1 digest, RSA under 2048 bits), or nil.
        public var weakness: String?
    }

    public var status: Status
    /// The SignerInfos, in order (at most the verifier's signer limit).
    public var signers: [Signer]
    /// The signed content: the detached content given, or the eContent of an opaque signature
    /// (only when the signature was checked).
    public var content: [UInt8]?
    /// The revocation status of the signers' chains, when a `RevocationChecker` was given.
    public var revocation: ChainRevocation?

    public init(status: Status, signers: [Signer] = [], content: [UInt8]? = nil) {
        self.status = status
        self.signers = signers
        self.content = content
    }
}
