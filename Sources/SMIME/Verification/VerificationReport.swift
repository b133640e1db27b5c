// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The result of checking the S/MIME signature of one message, in the terms of RFC 7281 §3.1.
/// Shared by the verifier (which makes it) and the policy (which turns it into an
/// Authentication-Results header, a subject tag and an action).
public enum SMIMEResult: String, Sendable, CaseIterable {
    /// Signed, acceptable to us and verified (chain, validity, key usage, signer = From).
    case pass
    /// Signed, but verification failed (digest mismatch, bad signature, untrusted chain, ...).
    case fail
    /// Not signed.
    case none
    /// Could not be processed (syntax errors, unsupported structure).
    case neutral
    /// Verified, but not acceptable to us (signer is not the From address, weak algorithm).
    case policy
    /// A transient problem; trying again later may give another answer.
    case temperror
    /// A permanent problem, e.g. garbage where the CMS structure should be.
    case permerror
}

/// What the verifier found out about one message.
public struct VerificationReport: Sendable, Equatable {
    public var result: SMIMEResult
    /// Why it did not pass, in plain words (for the header comment and the log); nil on pass.
    public var reason: String?
    /// Whether the signed content is still what was signed, whatever the verdict on the signer:
    /// an untrusted chain is `intact`, a digest mismatch `altered`. Outbound mail uses it to tell
    /// a signature broken in transit from one whose CA we simply do not trust.
    public var integrity: SignatureIntegrity = .unknown
    /// The e-mail addresses in the signer's certificate (lower-cased).
    public var signerAddresses: [String]
    /// The address reported as `body.smime-identifier`: the one that matched From, else the
    /// certificate's first address.
    public var identifier: String?
    /// The IMAP section number of the part holding the signature (`body.smime-part`).
    public var part: String?
    /// The signer certificate's serial number (hex) and issuer DN (`body.smime-serial`,
    /// `body.smime-issuer`), reported together or not at all.
    public var serialHex: String?
    public var issuer: String?
    /// True when the message is encrypted (enveloped-data): the gateway holds no key, so the
    /// result is `none` with this flag rather than a failure.
    public var isEncrypted: Bool
    /// The signed signingTime attribute of the reported signer, if any (asserted by the signer,
    /// so only for diagnostics such as `verify --at signing-time`; RFC 8550 §6).
    public var signingTime: Date?
    /// What broke the signature, for a multipart/signed `fail` with a digest mismatch (its
    /// description is also in `reason`); from `verifyAndDiagnose`, also a note on a `pass` whose
    /// stored copy differs from what was signed (LF line ends). Nil otherwise.
    public var diagnosis: SignatureDiagnosis?
    /// Set when the signature covers only one part of the message (nil when it covers the
    /// message): the signed part and the unsigned content beside it.
    public var partial: PartialSignature?
    /// True when the signature verified and the only thing keeping it from passing is that it
    /// covers part of the message (`PartialSignatures policy`): the policy then treats it as a
    /// missing signature for `RequireSignature` and tags it with `SubjectTagPartial`.
    public var isPartialSignature: Bool = false
    /// The protected header fields the signed content carries (RFC 9788 `hp` parameter, or the
    /// legacy `message/rfc822` wrapper of RFC 8551 §3.1); nil when it carries none.
    public var protectedHeaders: ProtectedHeaders?
    /// A remark for the comment of a result that is otherwise plain (e.g. a pass whose outer
    /// Subject differs from the signed one); nil for none.
    public var note: String?
    /// What revocation checking found about the signer's chain (OCSP, CRLs, cache, CRLDir), when
    /// it ran; a revoked certificate also makes the result `fail`.
    public var revocation: ChainRevocation?

    public init(
        result: SMIMEResult, reason: String? = nil, signerAddresses: [String] = [], identifier: String? = nil,
        part: String? = nil, serialHex: String? = nil, issuer: String? = nil, isEncrypted: Bool = false,
        signingTime: Date? = nil, diagnosis: SignatureDiagnosis? = nil
    ) {
        self.result = result
        self.reason = reason
        self.signerAddresses = signerAddresses
        self.identifier = identifier
        self.part = part
        self.serialHex = serialHex
        self.issuer = issuer
        self.isEncrypted = isEncrypted
        self.signingTime = signingTime
        self.diagnosis = diagnosis
    }
}

/// Whether a signature still covers the content as it stands (independent of trust in the signer).
public enum SignatureIntegrity: String, Sendable, Equatable {
    /// Signature value and digest match the content (the chain may still be untrusted or invalid).
    case intact
    /// The content or the signed attributes changed after signing: digest mismatch, bad
    /// signature value, or a detached signature carrying other content than the part shows.
    case altered
    /// Not known: unsigned, encrypted, unparseable, over a limit, signer certificate missing.
    case unknown
}
