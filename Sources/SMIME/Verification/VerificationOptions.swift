// SPDX-License-Identifier: Apache-2.0
import MIME

/// Settings and resource bounds for `MessageVerifier`.
public struct VerificationOptions: Sendable, Equatable {
    /// Accept MD5/SHA-1 digests or signatures and RSA keys under 2048 bits (`AllowWeakAlgorithms`);
    /// otherwise a valid but weak signature is `policy`.
    public var allowWeakAlgorithms: Bool
    /// Pass a valid signature whose certificate names no e-mail address at all (RFC 8550 §3
    /// allows it). Off by default: such a certificate cannot vouch for the From address, so the
    /// result is `policy` (as Bouncy Castle's validator and the corpus expect).
    public var acceptSignerWithoutAddress: Bool
    /// Bounds for parsing the message (nesting depth, number of entities, header fields).
    public var limits: MIMELimits
    /// The largest detached signature part (`.p7s`, still transfer-encoded) that is decoded.
    public var maxSignatureBytes: Int
    /// The largest opaque signed-data part (`.p7m`, still transfer-encoded) that is decoded.
    public var maxSignedDataBytes: Int
    /// At most this many certificates in one SignedData.
    public var maxCertificates: Int
    /// At most this many SignerInfos in one SignedData.
    public var maxSigners: Int
    /// Whether and how far a digest mismatch of multipart/signed is diagnosed (`SignatureDiagnoser`).
    public var diagnosis: DiagnosisOptions
    /// What a valid signature over one part of the message gives (`PartialSignatures`).
    public var partialSignatures: PartialSignatureRule = .policy

    public init(allowWeakAlgorithms: Bool = false, acceptSignerWithoutAddress: Bool = false,
                limits: MIMELimits = MIMELimits(maxDepth: 32, maxParts: 1_000),
                maxSignatureBytes: Int = 1 << 20, maxSignedDataBytes: Int = 64 << 20,
                maxCertificates: Int = 50, maxSigners: Int = 8, diagnosis: DiagnosisOptions = DiagnosisOptions()) {
        self.allowWeakAlgorithms = allowWeakAlgorithms
        self.acceptSignerWithoutAddress = acceptSignerWithoutAddress
        self.limits = limits
        self.maxSignatureBytes = maxSignatureBytes
        self.maxSignedDataBytes = maxSignedDataBytes
        self.maxCertificates = maxCertificates
        self.maxSigners = maxSigners
        self.diagnosis = diagnosis
    }
}
