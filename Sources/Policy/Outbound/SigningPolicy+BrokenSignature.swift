// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import SMIME

/// Step 4: outbound mail that the user's mail client already signed. It is never signed twice.
/// An intact signature passes untouched; a broken one (changed on the way, typically by a
/// disclaimer milter before ours) gets `OnBrokenSignature`: resign, strip (and warn) or keep.
extension SigningPolicy {
    /// The name of the warning header added when a broken signature is removed.
    public static let warningFieldName = "X-SMIME-Milter"

    /// `body` is the message's body in memory.
    func alreadySigned(_ message: MessageContext, body: [UInt8], fromAddress: String, outcome: PolicyOutcome,
                       now: Date) -> PolicyOutcome {
        var outcome = outcome
        guard let verifier = integrityVerifier else {
            outcome.decision = .skipped(reason: "already signed (signature not checked)")
            return outcome
        }
        let report = verifier.verify(fields: message.fields, body: body, fromAddress: fromAddress, at: now)
        if report.isEncrypted {
            outcome.decision = .skipped(reason: "already encrypted")
            return outcome
        }
        switch report.integrity {
        case .intact:
            outcome.decision = .skipped(reason: "already signed, signature intact")
            return outcome
        case .unknown:
            // Not S/MIME (PGP/MIME is multipart/signed too), or not checkable: never touch what
            // we cannot show was altered.
            outcome.decision = .skipped(reason: "already signed, signature not checked: \(report.reason ?? "unknown")")
            return outcome
        case .altered:
            return brokenSignature(message, body: body, fromAddress: fromAddress, report: report, outcome: outcome, now: now)
        }
    }

    /// `OnBrokenSignature` for `fromAddress`: the SigningTable line's option, else the global
    /// key, else resign when an identity for the address exists and strip when none does.
    public func brokenSignatureAction(for fromAddress: String) -> BrokenSignatureAction {
        if let option = configuration.signingTable?.match(fromAddress)?.options.onBrokenSignature {
            return option
        }
        if let global = configuration.onBrokenSignature { return global }
        if case .success = chooseIdentity(for: fromAddress) { return .resign }
        return .strip
    }

    private func brokenSignature(_ message: MessageContext, body: [UInt8], fromAddress: String, report: VerificationReport,
                                 outcome: PolicyOutcome, now: Date) -> PolicyOutcome {
        var outcome = outcome
        let why = report.reason ?? "signature broken"
        let action = brokenSignatureAction(for: fromAddress)
        outcome.details.append(("broken_signature", why))
        if let diagnosis = report.diagnosis { outcome.details.append(("cause", diagnosis.cause.label)) }
        outcome.details.append(("on_broken", action.rawValue))
        guard let layer = SignatureLayer.unwrap(fields: message.fields, body: body) else {
            // Opaque signed-data carries the content inside the signature: there is no layer
            // to remove without the content, so it goes on as it is.
            outcome.decision = .skipped(reason: "already signed, signature broken: \(why); kept (the signature layer cannot be removed)")
            return outcome
        }
        switch action {
        case .keep:
            outcome.decision = .skipped(reason: "already signed, signature broken: \(why); kept (OnBrokenSignature keep)")
            return outcome
        case .strip:
            return strip(message, layer: layer, report: report, why: why, outcome: outcome, notResigned: nil)
        case .resign:
            let signed = sign(message, fromAddress: fromAddress, outcome: outcome, now: now, replacing: layer)
            switch signed.decision {
            case .signed, .error:
                return signed
            case .skipped where signed.action != .accept:
                // OnExpiredCertificate tempfail: the MTA keeps the message until it can be signed.
                return signed
            case let .skipped(reason), let .unauthorised(reason):
                // Never sign for an address the submitter may not use, and never sign without
                // an identity: the broken signature still goes, with the warning.
                return strip(message, layer: layer, report: report, why: why, outcome: signed, notResigned: reason)
            case .stripped, .verified:
                return signed
            }
        }
    }

    /// Removes the layer, adds the warning header and asks for the report.
    private func strip(_ message: MessageContext, layer: SignatureLayer, report: VerificationReport, why: String,
                       outcome: PolicyOutcome, notResigned: String?) -> PolicyOutcome {
        var outcome = outcome
        let signer = report.identifier ?? report.signerAddresses.first
        let warning = "original S/MIME signature" + (signer.map { " by \($0)" } ?? "") + " removed: \(why)"
        outcome.decision = .stripped(reason: warning)
        if let notResigned { outcome.details.append(("not_resigned", notResigned)) }
        outcome.edits = layer.removalEdits(message.fields)
        outcome.edits.append(.addField(name: Self.warningFieldName, value: WarningField.value(warning)))
        if let recipient = configuration.brokenSignatureReport, let from = outcome.fromAddress {
            outcome.report = BrokenSignatureReportText.make(
                recipient: recipient, host: configuration.authservID, message: message, fromAddress: from,
                signer: signer, why: why, diagnosis: report.diagnosis, notResigned: notResigned)
        }
        return outcome
    }
}

/// The value of the warning header: printable ASCII (anything else becomes `?`), at most 400
/// characters, folded at spaces with "\n\t" so no line passes 78 characters.
enum WarningField {
    static func value(_ text: String, nameLength: Int = SigningPolicy.warningFieldName.count) -> String {
        let clean = PrintableASCII.cleaned(text, replacement: "?", limit: 400)
        return HeaderFolding.fold(clean.split(separator: " ").map(String.init), column: nameLength + 1)
    }
}

/// The text of the `BrokenSignatureReport` mail.
enum BrokenSignatureReportText {
    static func make(recipient: String, host: String, message: MessageContext, fromAddress: String,
                     signer: String?, why: String, diagnosis: SignatureDiagnosis?, notResigned: String?) -> ReportMail {
        let messageID = message.fields.first(named: "Message-ID")?.value.trimmingCharacters(in: .whitespacesAndNewlines)
        var lines = [
            "A message from \(fromAddress) was signed by the sender's mail client, but the",
            "signature no longer matched the content when it reached smime-milter on \(host).",
            "",
            "  queue id:   \(message.queueID ?? "none")",
            "  message-id: \(messageID ?? "none")",
            "  From:       \(fromAddress)",
            "  signer:     \(signer ?? "unknown")",
            "  problem:    \(why)",
        ]
        if let diagnosis {
            lines.append("  found:      \(oneLine(diagnosis.detail))")
            if let footer = diagnosis.footer { lines.append("  footer:     \(oneLine(footer))") }
        }
        lines += [
            "  action:     the broken signature was removed; the message went on unsigned",
            "              with an X-SMIME-Milter header saying why.",
        ]
        if let notResigned {
            lines.append("  not signed: \(notResigned)")
        }
        lines += [
            "",
            "Something between the mail client and smime-milter changed the signed content:",
            "usually a disclaimer or footer milter that runs before smime-milter, or a",
            "content filter. smime-milter must be the last milter in smtpd_milters; see",
            "broken-signatures.md in smime-milter's documentation.",
            "",
            "Further reports about \(fromAddress) are held back for an hour.",
        ]
        return ReportMail(
            recipient: recipient,
            subject: "smime-milter on \(host): broken S/MIME signature of \(fromAddress) removed",
            text: lines.joined(separator: "\n"), rateKey: fromAddress)
    }

    /// Control characters become spaces, at most 300 characters: report lines stay lines.
    static func oneLine(_ text: String) -> String {
        String(text.unicodeScalars.prefix(300).map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
    }
}
