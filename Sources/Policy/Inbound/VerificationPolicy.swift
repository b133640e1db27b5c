// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import SMIME

/// The decision for one inbound message: check its signature (through a `SignatureVerifier`)
/// and tell the recipient the result: one `Authentication-Results` field at the top, forged
/// ones removed, an optional Subject tag, and the `RequireSignature` rule enforced.
///
/// Which tag applies (each is optional, empty by default):
/// - `pass` → `SubjectTagPass`;
/// - `policy` for a valid signature over one part only → `SubjectTagPartial` (not broken, but
///   not the message's signature either);
/// - `fail`, `policy`, `neutral`, `permerror` → `SubjectTagFail` (the message is signed, but
///   the signature proves nothing: the reader should not trust it);
/// - `none` (unsigned) → `SubjectTagNone`;
/// - `temperror` and encrypted mail → no tag (the answer may change; an encrypted message
///   is checked by the recipient's own client).
///
/// A Subject that already starts with the tag is left alone. When the result is not pass, a
/// leading `SubjectTagPass` is removed first (the sender wrote it to look verified). A message
/// without Subject gets one holding only the tag, when a tag applies. A Subject in raw 8-bit
/// bytes (not valid UTF-8) is not tagged: it could not be written back byte for byte.
///
/// The result itself comes from `verdict(fields:body:now:)` (MessageVerdict.swift), which the
/// `verify` and `diagnose` commands call too: what counts as signed, the From rules, and header
/// protection. A valid signature over one part only (`isPartialSignature`) gets
/// `SubjectTagPartial` instead of the fail tag, and is a missing signature for `RequireSignature`.
///
/// `RequireSignature`: when a From address (or its `@domain`) is listed and the result is not
/// pass, `OnMissingSignature` applies: `tag` uses `SubjectTagFail`, or `[UNVERIFIED]` when it is
/// empty, whatever the result (unsigned, failed or encrypted); `quarantine` adds the usual
/// fields and asks the MTA to hold the message; `reject` refuses it with 550 5.7.1 (451 4.7.5
/// for `temperror`, whose answer may change: `FailureRules.temporaryVerificationFailure`);
/// `accept` changes nothing.
///
/// A spooled body that cannot be read is an error under `OnError` (`FailureRules.error`).
public struct VerificationPolicy: Sendable {
    public let configuration: Configuration
    public let verifier: any SignatureVerifier

    /// The tag for `OnMissingSignature tag` when `SubjectTagFail` is empty.
    public static let defaultRequiredTag = "[UNVERIFIED]"

    public init(configuration: Configuration, verifier: any SignatureVerifier) {
        self.configuration = configuration
        self.verifier = verifier
    }

    /// Verifies `message` and returns the edits that report the result, and the action.
    public func evaluate(_ message: MessageContext, now: Date = Date()) -> PolicyOutcome {
        evaluateReporting(message, now: now).outcome
    }

    /// `evaluate`, with the report and the body it was made from (nil when the body could not
    /// be read), for what comes after the verdict (harvesting the signer's certificate). For a
    /// large multipart/signed verified from its spool file, that body is the signature part in
    /// its multipart/signed frame, part 1 left out (`StreamedVerification.verified`).
    public func evaluateReporting(_ message: MessageContext, now: Date = Date())
        -> (outcome: PolicyOutcome, report: VerificationReport?, body: [UInt8]?) {
        func unreadable(_ error: any Error) -> (outcome: PolicyOutcome, report: VerificationReport?, body: [UInt8]?) {
            let from = FromField.of(message.fields)
            return (configuration.failureRules.error("\(error)", outcome: PolicyOutcome(decision: .error(reason: ""), fromAddress: from.single)), nil, nil)
        }
        let body: [UInt8]
        let verdict: MessageVerdict
        do {
            // A spooled body (over SpoolThreshold) is verified from its file when it is a
            // multipart/signed: part 1 is hashed from the file, only the signature part is read.
            // Any other shape, or one the streamed path is not sure of, is read into memory.
            if let file = message.body.file, let streamed = try self.verdict(fields: message.fields, file: file, now: now) {
                verdict = streamed.verdict
                body = streamed.signatureBody
            } else {
                body = try message.body.bytes()
                verdict = self.verdict(fields: message.fields, body: body, now: now)
            }
        } catch {
            return unreadable(error)
        }
        let report = verdict.report
        let froms = verdict.fromAddresses
        let reason = report.result == .pass ? nil : (report.isEncrypted ? "message is encrypted" : report.reason)
        var outcome = PolicyOutcome(decision: .verified(result: report.result, reason: reason), fromAddress: verdict.fromAddress)
        if let identifier = report.identifier { outcome.details.append(("identifier", identifier)) }
        if let part = report.part { outcome.details.append(("part", part)) }
        if let diagnosis = report.diagnosis { outcome.details.append(("cause", diagnosis.cause.label)) }
        if let partial = report.partial, !report.isPartialSignature { outcome.details.append(("partial", partial.reason)) }
        if let note = report.note { outcome.details.append(("note", note)) }

        // RFC 8601 §5: fields claiming our authserv-id did not come from us. Last first, so the
        // occurrence numbers of the earlier ones stay right.
        var occurrence = 0
        var forged: [Int] = []
        for field in message.fields where field.hasName(AuthenticationResults.fieldName) {
            occurrence += 1
            if AuthenticationResults.claims(field.value, authservID: configuration.authservID) {
                forged.append(occurrence)
            }
        }
        for n in forged.reversed() {
            outcome.edits.append(.deleteField(name: AuthenticationResults.fieldName, occurrence: n))
        }
        if !forged.isEmpty { outcome.details.append(("removed", "\(forged.count) forged Authentication-Results")) }
        outcome.edits.append(.insertField(
            index: 0, name: AuthenticationResults.fieldName,
            value: AuthenticationResults.value(authservID: configuration.authservID, report: report)))

        var tag = normalTag(for: report)
        if report.result != .pass, let required = requiredEntry(froms) {
            outcome.details.append(("required", required))
            switch configuration.onMissingSignature {
            case .tag:
                tag = configuration.subjectTagFail.isEmpty ? Self.defaultRequiredTag : configuration.subjectTagFail
            case .quarantine:
                outcome.action = .quarantine(reason: rejectionText(required: required, report: report))
            case .reject:
                outcome.edits = []
                if report.result == .temperror {
                    outcome.action = FailureRules.temporaryVerificationFailure(rejectionText(required: required, report: report))
                } else {
                    outcome.action = .reject(code: "550", xcode: "5.7.1", text: rejectionText(required: required, report: report))
                }
                return (outcome, report, body)
            case .accept:
                break
            }
        }
        if report.result == .temperror, report.revocation?.unknown != nil, configuration.onRevocationUnknown == .tempfail {
            outcome.edits = []
            outcome.action = FailureRules.revocationUnknown(report.reason ?? "revocation status unknown")
            return (outcome, report, body)
        }
        outcome.edits += subjectEdits(message.fields, tag: tag, removingPassTag: report.result != .pass,
                                      protectedSubject: verdict.protectedSubject, details: &outcome.details)
        return (outcome, report, body)
    }

    /// The configured tag for the result, ignoring `RequireSignature`; empty for none.
    func normalTag(for report: VerificationReport) -> String {
        if report.isEncrypted { return "" }
        switch report.result {
        case .pass: return configuration.subjectTagPass
        // A valid signature over one part: not broken, but not the message's either.
        case .policy where report.isPartialSignature: return configuration.subjectTagPartial
        case .fail, .policy, .neutral, .permerror: return configuration.subjectTagFail
        case .none: return configuration.subjectTagNone
        case .temperror: return ""
        }
    }

    /// The `RequireSignature` entry listing one of the From addresses, if any. With several
    /// From addresses one listed is enough: adding an address must not escape the rule.
    func requiredEntry(_ froms: [String]) -> String? {
        guard let list = configuration.requireSignature else { return nil }
        for address in froms {
            if let entry = list.entry(for: address) { return entry }
        }
        return nil
    }

    /// The Subject edits: remove a forged pass tag, put `tag` in front (or add a Subject).
    /// With a `protectedSubject` (RFC 9788: the signed Subject differs from the outer one) a
    /// tag goes in front of the protected Subject, which replaces the outer one.
    func subjectEdits(
        _ fields: [HeaderField], tag: String, removingPassTag: Bool, protectedSubject: String? = nil,
        details: inout [(String, String)]
    ) -> [MessageEdit] {
        let trimmedTag = tag.trimmingBlanks()
        guard let subject = fields.first(named: "Subject") else {
            guard !trimmedTag.isEmpty else { return [] }
            details.append(("tag", trimmedTag))
            return [.addField(name: "Subject", value: SubjectTag.newValue(tag: trimmedTag))]
        }
        if subject.isLatin1Fallback {
            if !trimmedTag.isEmpty { details.append(("tag", "not added (8-bit Subject)")) }
            return []
        }
        var value = subject.value
        var changed = false
        if let protectedSubject, !trimmedTag.isEmpty {
            value = protectedSubject.replacingOccurrences(of: "\r\n", with: "\n")
            changed = true
            details.append(("subject", "protected Subject restored"))
        }
        if removingPassTag, let stripped = SubjectTag.untagged(value, tag: configuration.subjectTagPass) {
            value = stripped
            changed = true
            details.append(("removed-tag", configuration.subjectTagPass.trimmingBlanks()))
        }
        if let tagged = SubjectTag.tagged(value, with: trimmedTag) {
            value = tagged
            changed = true
            details.append(("tag", trimmedTag))
        }
        return changed ? [.changeField(name: subject.name, occurrence: 1, value: value)] : []
    }

    /// One line of printable ASCII for the SMTP reply and the quarantine reason.
    func rejectionText(required: String, report: VerificationReport) -> String {
        var why = report.isEncrypted ? "the message is encrypted and cannot be checked"
            : report.result == .none ? "the message is not signed"
            : "its signature did not pass: " + AuthenticationResults.sanitisedComment(
                report.reason ?? AuthenticationResults.defaultComment(report.result))
        if why.count > 300 { why = String(why.prefix(300)) + "..." }
        let sender = required.hasPrefix("@") ? "senders at " + required.dropFirst() : String(required)
        let text = "S/MIME signature required: mail from \(sender) must carry a valid S/MIME signature, and \(why) (smime=\(report.result.rawValue))"
        return PrintableASCII.cleaned(text)
    }
}
