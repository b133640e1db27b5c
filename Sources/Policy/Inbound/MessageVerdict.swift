// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import SMIME

/// The verdict on one inbound message: the verifier's report with the message-level rules
/// applied. The milter (through `VerificationPolicy.evaluate`) and the `verify` and `diagnose`
/// commands reach their result only through `VerificationPolicy.verdict`, so the command prints
/// what the milter writes.
///
/// The rules (see docs/inbound-policy.md, "What counts as signed"):
/// - the signature must cover the message (the verifier: a signature over one part is `policy`
///   under `PartialSignatures policy`);
/// - exactly one From field, every mailbox named by the signer's certificate, a display name
///   showing no other address, no group syntax or encoded word in place of an address;
/// - with header protection (RFC 9788), the outer From must be the signed one.
public struct MessageVerdict: Sendable {
    /// The result, as written into Authentication-Results.
    public var report: VerificationReport
    /// Every From address (normalised) and the single one, when there is exactly one.
    public var fromAddresses: [String]
    public var fromAddress: String? { fromAddresses.count == 1 ? fromAddresses[0] : nil }
    /// The protected Subject (as written) when the signature passed and the outer Subject
    /// differs from it: a Subject tag is put on this one.
    public var protectedSubject: String?
}

extension VerificationPolicy {
    /// Verifies the message given by its top-level `fields` and `body` and applies the
    /// message-level rules.
    public func verdict(fields: [HeaderField], body: [UInt8], now: Date = Date()) -> MessageVerdict {
        let from = FromField.of(fields)
        let report = verifier.verify(fields: fields, body: body, fromAddress: from.single, at: now)
        return verdict(fields: fields, report: report, from: from)
    }

    /// `verdict(fields:body:now:)` for a body in a spool file, verified from the file (a large
    /// multipart/signed is never read into memory): the verdict and the body the signature
    /// is found in afterwards (`StreamedVerification.verified`), or nil when only the in-memory
    /// path can decide (the caller then reads the body and calls `verdict(fields:body:now:)`).
    ///
    /// - Throws: when the file cannot be read.
    public func verdict(fields: [HeaderField], file: BodyFile, now: Date = Date()) throws
        -> (verdict: MessageVerdict, signatureBody: [UInt8])? {
        let from = FromField.of(fields)
        switch try verifier.verify(fields: fields, file: file, fromAddress: from.single, at: now) {
        case .needsMemory: return nil
        case let .verified(report, signatureBody):
            return (verdict(fields: fields, report: report, from: from), signatureBody)
        }
    }

    /// The message-level rules over the verifier's report: the same for both paths.
    private func verdict(fields: [HeaderField], report verified: VerificationReport, from: FromField) -> MessageVerdict {
        var report = Self.applyFromRules(verified, from: from)
        var protectedSubject: String?
        // The verifier compared the signer with the outer From; the signed From is what the
        // signer vouches for, so an outer From that differs is the reason (also when the
        // verifier already said policy because the signer is not the outer From).
        if let protected = report.protectedHeaders, report.result == .pass || report.result == .policy {
            let comparison = HeaderProtection.compare(protected, outer: fields)
            if let mismatch = comparison.fromMismatch {
                report = Self.downgrade(report, reason: mismatch)
            } else if report.result == .pass || report.isPartialSignature {
                report.note = HeaderProtection.note(comparison.changed)
                if report.result == .pass { protectedSubject = comparison.protectedSubject }
            }
        }
        report = applyRevocationUnknown(report)
        return MessageVerdict(report: report, fromAddresses: from.addresses, protectedSubject: protectedSubject)
    }

    /// `OnRevocationUnknown` for a signature that would pass but whose chain has a certificate
    /// of unknown revocation status: accept (the result stands, the comment says so), policy,
    /// or tempfail (`temperror`; `evaluate` then tempfails the message through FailureRules).
    func applyRevocationUnknown(_ report: VerificationReport) -> VerificationReport {
        guard report.result == .pass || report.isPartialSignature,
              let why = report.revocation?.unknownReason else { return report }
        var out = report
        switch configuration.onRevocationUnknown {
        case .accept:
            out.note = [report.note, why].compactMap { $0 }.joined(separator: "; ")
        case .policy:
            out = Self.downgrade(report, reason: why)
        case .tempfail:
            out.result = .temperror
            out.reason = why
            out.isPartialSignature = false
        }
        return out
    }

    /// A verified signature (pass, or policy only for covering part of the message) vouches
    /// for nobody when the From field is ambiguous, and with several mailboxes only when the
    /// certificate names each one (a signer naming one must not lend its pass to the others).
    static func applyFromRules(_ report: VerificationReport, from: FromField) -> VerificationReport {
        guard report.result == .pass || report.isPartialSignature else { return report }
        if let problem = from.problem { return downgrade(report, reason: problem) }
        if from.addresses.count > 1, let missing = from.addresses.first(where: { !report.signerAddresses.contains($0) }) {
            return downgrade(report, reason: "the message has \(from.addresses.count) From addresses and the signer's certificate does not name \(missing)")
        }
        return report
    }

    static func downgrade(_ report: VerificationReport, reason: String) -> VerificationReport {
        var out = report
        out.result = .policy
        out.reason = reason
        out.isPartialSignature = false
        return out
    }
}
