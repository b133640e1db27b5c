// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME

/// Verifies the S/MIME signature of a whole message and says, in RFC 7281 terms, what it found.
///
/// Has exactly the method of `Policy.SignatureVerifier` (the conformance is declared in Policy,
/// which depends on this module). Never throws and never crashes on hostile input: every path
/// ends in a `VerificationReport` with a plain-words reason, and the work is bounded by
/// `VerificationOptions` (MIME depth and part count, signature part sizes, certificates, signers).
/// Safe to call from many threads at once.
public struct MessageVerifier: Sendable {
    /// The trust anchors and CRLs.
    public let trust: TrustStore
    /// Weak-algorithm policy and resource bounds.
    public let options: VerificationOptions
    /// Revocation checking beyond CRLDir (OCSP, CRLs from distribution points), if configured.
    public var revocation: RevocationChecker?

    public init(trust: TrustStore, options: VerificationOptions = VerificationOptions(), revocation: RevocationChecker? = nil) {
        self.trust = trust
        self.options = options
        self.revocation = revocation
    }

    /// Verifies one message.
    ///
    /// - Parameters:
    ///   - fields: the top-level header fields.
    ///   - body: the body. CRLF line ends are expected; the signed part is canonicalised to CRLF
    ///     before hashing anyway, and a binary (DER) signature part is used exactly as given.
    ///   - fromAddress: the From address, or nil (then the signer is not compared with it).
    ///   - at: the time certificates are validated at (the arrival time; RFC 8550 §6).
    public func verify(fields: [HeaderField], body: [UInt8], fromAddress: String?, at time: Date) -> VerificationReport {
        let root: MIMEEntity
        do {
            root = try MIMEParser.parse(fields: fields, body: body, limits: options.limits)
        } catch {
            return VerificationReport(result: .neutral, reason: "the message cannot be processed: \(error)")
        }
        guard let found = SignatureLocator.locate(root) else {
            return VerificationReport(result: .none, reason: "the message is not signed")
        }
        var report: VerificationReport
        let located: MIMEEntity
        switch found {
        case .brokenDetached(let entity, let count):
            located = entity
            report = VerificationReport(result: .permerror,
                                        reason: "multipart/signed has \(count) part\(count == 1 ? "" : "s"), not 2",
                                        part: SignatureLocator.section(of: entity))
        case .detached(let entity, let signed, let signature):
            located = entity
            report = verifyDetached(signed: signed, signature: signature, from: fromAddress, at: time)
            if report.integrity == .intact { report.protectedHeaders = ProtectedHeaders.of(signed) }
        case .pkcs7Mime(let entity):
            located = entity
            report = verifyPKCS7Mime(entity, from: fromAddress, at: time)
        }
        return Self.applyCoverage(report, signed: located, root: root, rule: options.partialSignatures)
    }

    /// A signature over one part is not a signature over the message: with
    /// `PartialSignatures policy` a pass becomes `policy`, naming the signed part and the
    /// unsigned content; other results keep their own reason. The partial facts are kept
    /// either way (for the log line and `diagnose`).
    static func applyCoverage(_ report: VerificationReport, signed: MIMEEntity, root: MIMEEntity,
                              rule: PartialSignatureRule) -> VerificationReport {
        guard let partial = PartialSignature.of(signed, in: root) else { return report }
        var out = report
        out.partial = partial
        if out.result == .pass, rule == .policy {
            out.result = .policy
            out.reason = partial.reason
            out.isPartialSignature = true
        }
        return out
    }

    // MARK: the two forms

    /// The DER of a detached signature part, or the permerror report that refuses it. Shared by
    /// the in-memory and the streamed path (`verify(fields:file:fromAddress:at:)`).
    func detachedSignatureDER(_ signature: MIMEEntity, part: String) -> Result<[UInt8], DetachedRefusal> {
        // Refuse by size before decoding anything (a 50 MB "signature" is not one).
        guard signature.body.count <= options.maxSignatureBytes else {
            return .failure(DetachedRefusal(report: VerificationReport(
                result: .permerror, reason: "the signature part is \(signature.body.count) bytes, "
                + "over the limit of \(options.maxSignatureBytes)", part: part)))
        }
        switch decode(signature) {
        case .success(let bytes): return .success(bytes)
        case .failure(let reason): return .failure(DetachedRefusal(report: VerificationReport(result: .permerror, reason: reason, part: part)))
        }
    }

    /// A detached signature part refused before any CMS check.
    struct DetachedRefusal: Error {
        let report: VerificationReport
    }

    private func verifyDetached(signed: MIMEEntity, signature: MIMEEntity, from: String?, at time: Date) -> VerificationReport {
        let part = SignatureLocator.section(of: signature)
        let der: [UInt8]
        switch detachedSignatureDER(signature, part: part) {
        case .success(let bytes): der = bytes
        case .failure(let refusal): return refusal.report
        }
        // The signed bytes are part 1 exactly as it stands (RFC 1847 §2.1), in canonical CRLF form.
        let content = LineEnds.toCRLF(signed.rawBytes)
        let checked = cmsVerifier.verify(signedData: der, detachedContent: content, at: time)
        var result = report(checked, part: part, from: from, detached: true)
        if checked.status == .contentAltered, options.diagnosis.enabled {
            // The digest does not match: find out what changed, with the signed digest as oracle.
            let diagnosis = diagnoser.diagnose(signedContent: Array(signed.rawBytes), signature: der, canonicalChecked: true)
            result.diagnosis = diagnosis
            result.reason = Self.alteredReason(diagnosis)
        }
        return result
    }

    /// The diagnoser with this verifier's bounds.
    var diagnoser: SignatureDiagnoser {
        SignatureDiagnoser(options: options.diagnosis, limits: options.limits, maxSigners: options.maxSigners)
    }

    /// "body altered after signing: footer appended to text/plain part (confirmed)", or with an
    /// unknown cause "body altered after signing (digest mismatch, cause unknown)".
    static func alteredReason(_ diagnosis: SignatureDiagnosis) -> String {
        diagnosis.confidence == .unknown
            ? "body altered after signing (digest mismatch, cause unknown)"
            : "body altered after signing: \(diagnosis.description)"
    }

    private func verifyPKCS7Mime(_ entity: MIMEEntity, from: String?, at time: Date) -> VerificationReport {
        let part = SignatureLocator.section(of: entity)
        guard entity.body.count <= options.maxSignedDataBytes else {
            return VerificationReport(result: .permerror, reason: "the application/pkcs7-mime part is \(entity.body.count) bytes, "
                                      + "over the limit of \(options.maxSignedDataBytes)", part: part)
        }
        let der: [UInt8]
        switch decode(entity) {
        case .success(let bytes): der = bytes
        case .failure(let reason): return VerificationReport(result: .permerror, reason: reason, part: part)
        }
        let checked = cmsVerifier.verify(signedData: der, detachedContent: nil, at: time)
        var result = report(checked, part: part, from: from, detached: false)
        if result.integrity == .intact, let content = checked.content,
           let inner = try? MIMEParser.parse(message: content, limits: options.limits) {
            result.protectedHeaders = ProtectedHeaders.of(inner)
        }
        return result
    }

    var cmsVerifier: CMSVerifier {
        CMSVerifier(trust: trust, maxCertificates: options.maxCertificates, maxSigners: options.maxSigners,
                    revocation: revocation)
    }

    enum Decoded {
        case success([UInt8])
        case failure(String)
    }

    /// The DER of a signature or pkcs7-mime part: base64 decoded tolerantly, a binary part as is.
    func decode(_ entity: MIMEEntity) -> Decoded { Self.decodeDER(entity) }

    /// `decode`, for the decryptor too.
    static func decodeDER(_ entity: MIMEEntity) -> Decoded {
        switch entity.transferEncoding {
        case .base64:
            let decoded = Base64Lines.decode(entity.body)
            if decoded.bytes.isEmpty {
                return .failure("the \(entity.contentType.mediaType) part holds no base64 data")
            }
            return .success(decoded.bytes)
        case .quotedPrintable:
            return .success(QuotedPrintable.decode(entity.body))
        default:
            let bytes = Array(entity.body)
            if bytes.isEmpty { return .failure("the \(entity.contentType.mediaType) part is empty") }
            // A DER SignedData starts with SEQUENCE (0x30); anything else is probably base64
            // without a Content-Transfer-Encoding field, which some senders omit.
            if bytes.first != 0x30 {
                let decoded = Base64Lines.decode(bytes)
                if decoded.garbageCount == 0, !decoded.bytes.isEmpty { return .success(decoded.bytes) }
            }
            return .success(bytes)
        }
    }

    // MARK: turning the CMS outcome into a report

    func report(_ checked: CMSVerification, part: String, from: String?, detached: Bool) -> VerificationReport {
        var report = VerificationReport(result: .permerror, part: part)
        let signer = chooseSigner(checked.signers, from: from)
        if let certificate = signer?.certificate {
            report.signerAddresses = certificate.addresses
            let fromLower = from?.lowercased()
            report.identifier = certificate.addresses.first { $0 == fromLower } ?? certificate.addresses.first
            report.serialHex = certificate.serialHex
            report.issuer = certificate.issuer
        }
        report.signingTime = signer?.signingTime
        report.integrity = Self.integrity(of: checked.status)
        report.revocation = checked.revocation

        switch checked.status {
        case .notSignedData(let kind):
            switch (kind, detached) {
            case (.envelopedData, false), (.authEnvelopedData, false):
                report.result = .none
                report.reason = "message is encrypted"
                report.isEncrypted = true
            case (.compressedData, false):
                report.result = .neutral
                report.reason = "compressed-data is not supported"
            default:
                report.reason = "the signature part holds \(kind.rawValue), not a signature"
            }
        case .noSigners:
            if detached {
                report.reason = "the signature has no signers"
            } else {
                report.result = .none
                report.reason = "certificates only (certs-only), no signature"
            }
        case .signerCertificateMissing:
            report.reason = "the signer's certificate is not in the message"
        case .malformed(let why):
            report.reason = why
        case .limitExceeded(let why):
            report.reason = why
        case .embeddedContentDiffers:
            report.result = .fail
            report.reason = "the signature carries other content than the signed part shows (CVE-2018-18509)"
        case .contentAltered:
            report.result = .fail
            report.reason = "body altered after signing (digest mismatch)"
        case .badSignature:
            report.result = .fail
            report.reason = "signature does not match (bad signature value)"
        case .certificateRejected(_, _, let why):
            report.result = .fail
            report.reason = why
        case .verified:
            applyPolicy(to: &report, signers: checked.signers, chosen: signer, from: from)
        }
        return report
    }

    /// Whether the content is still what was signed: signature value and digest checked out
    /// (`CMS_verify` succeeds before any path validation), or they did not.
    static func integrity(of status: CMSVerification.Status) -> SignatureIntegrity {
        switch status {
        case .verified, .certificateRejected: return .intact
        case .contentAltered, .badSignature, .embeddedContentDiffers: return .altered
        case .notSignedData, .noSigners, .signerCertificateMissing, .malformed, .limitExceeded: return .unknown
        }
    }

    /// A verified signature still needs the signer to be the From address and strong algorithms.
    private func applyPolicy(to report: inout VerificationReport, signers: [CMSVerification.Signer],
                             chosen: CMSVerification.Signer?, from: String?) {
        report.result = .pass
        report.reason = nil
        if let from = from?.lowercased(), !from.isEmpty {
            let addresses = chosen?.certificate?.addresses ?? []
            if addresses.isEmpty {
                if !options.acceptSignerWithoutAddress {
                    report.result = .policy
                    report.reason = "the signer's certificate names no e-mail address, so it does not vouch for \(from)"
                    return
                }
            } else if !addresses.contains(from) {
                report.result = .policy
                report.reason = "signer \(addresses.joined(separator: ", ")) is not the From address \(from)"
                return
            }
        }
        if !options.allowWeakAlgorithms, let weak = signers.compactMap(\.weakness).first {
            report.result = .policy
            report.reason = "weak algorithm: \(weak) (allowed only with AllowWeakAlgorithms)"
        }
    }

    /// The signer whose certificate names From, else the first.
    private func chooseSigner(_ signers: [CMSVerification.Signer], from: String?) -> CMSVerification.Signer? {
        if let from = from?.lowercased(),
           let match = signers.first(where: { $0.certificate?.addresses.contains(from) ?? false }) {
            return match
        }
        return signers.first
    }
}
