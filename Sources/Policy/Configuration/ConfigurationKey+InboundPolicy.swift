// SPDX-License-Identifier: Apache-2.0
import SMIME
/// Keys of the inbound verification policy: what the recipient sees (subject tags)
/// and what is enforced (RequireSignature).
extension ConfigurationKey {
    static let inboundPolicy: [ConfigurationKey] = [
        ConfigurationKey(
            name: "SubjectTagPass",
            syntax: "TEXT",
            defaultValue: "none",
            doc: "Text put in front of the Subject of inbound mail whose S/MIME signature passed, e.g. [signed]; a subject that already starts with it is left alone.",
            apply: { value, _, config in config.subjectTagPass = try ValueParsers.subjectTag(value) },
            show: { $0.subjectTagPass.isEmpty ? nil : $0.subjectTagPass }
        ),
        ConfigurationKey(
            name: "SubjectTagFail",
            syntax: "TEXT",
            defaultValue: "none",
            doc: "Text put in front of the Subject of inbound mail that is signed but did not pass (fail, policy, neutral, permerror), e.g. [SIGNATURE BROKEN].",
            apply: { value, _, config in config.subjectTagFail = try ValueParsers.subjectTag(value) },
            show: { $0.subjectTagFail.isEmpty ? nil : $0.subjectTagFail }
        ),
        ConfigurationKey(
            name: "SubjectTagNone",
            syntax: "TEXT",
            defaultValue: "none",
            doc: "Text put in front of the Subject of inbound mail that is not signed (encrypted mail is not tagged), e.g. [unsigned].",
            apply: { value, _, config in config.subjectTagNone = try ValueParsers.subjectTag(value) },
            show: { $0.subjectTagNone.isEmpty ? nil : $0.subjectTagNone }
        ),
        ConfigurationKey(
            name: "SubjectTagPartial",
            syntax: "TEXT",
            defaultValue: "none",
            doc: "Text put in front of the Subject of inbound mail whose valid signature covers only one part of the message (smime=policy, only part N is signed), e.g. [partly signed]; neither the pass nor the fail tag applies to such mail.",
            apply: { value, _, config in config.subjectTagPartial = try ValueParsers.subjectTag(value) },
            show: { $0.subjectTagPartial.isEmpty ? nil : $0.subjectTagPartial }
        ),
        ConfigurationKey(
            name: "PartialSignatures",
            syntax: "policy | pass",
            defaultValue: "policy",
            doc: "What a valid signature over one part of a message gives (a signed part next to unsigned ones, e.g. a mailing list's footer): policy (smime=policy, only part N is signed; a missing signature for RequireSignature), or pass, to accept list-wrapped mail as signed.",
            apply: { value, _, config in config.partialSignatures = try ValueParsers.choice(value, PartialSignatureRule.self) },
            show: { $0.partialSignatures.rawValue }
        ),
        ConfigurationKey(
            name: "RequireSignature",
            syntax: "PATH",
            defaultValue: "none",
            doc: "File of senders known to sign all their mail, one address or @domain per line with # comments; their mail without a passing signature gets OnMissingSignature.",
            apply: { value, context, config in
                config.requireSignature = try context.table(value, for: "RequireSignature") as RequiredSigners
            },
            show: { $0.requireSignature?.file }
        ),
        ConfigurationKey(
            name: "OnMissingSignature",
            syntax: "tag | quarantine | reject | accept",
            defaultValue: "tag",
            doc: "What happens to mail from a RequireSignature sender without a passing signature: tag the Subject (SubjectTagFail, or [UNVERIFIED] when that is empty), quarantine it in the MTA's hold queue, reject it with 550 5.7.1, or accept it.",
            apply: { value, _, config in config.onMissingSignature = try ValueParsers.choice(value, MissingSignatureAction.self) },
            show: { $0.onMissingSignature.rawValue }
        ),
        ConfigurationKey(
            name: "CRLDir",
            syntax: "PATH",
            defaultValue: "none",
            doc: "Directory of certificate revocation lists (PEM or DER) used when verifying; a signer whose issuer has a CRL here is checked against it.",
            apply: { value, context, config in config.crlDir = try context.path(value) },
            show: { $0.crlDir }
        ),
        ConfigurationKey(
            name: "AllowWeakAlgorithms",
            syntax: "yes | no",
            defaultValue: "no",
            doc: "Let signatures with MD5 or SHA-1 digests or RSA keys under 2048 bits pass; by default they get smime=policy with the weakness named.",
            apply: { value, _, config in config.allowWeakAlgorithms = try ValueParsers.boolean(value) },
            show: { $0.allowWeakAlgorithms ? "yes" : "no" }
        ),
    ]
}
