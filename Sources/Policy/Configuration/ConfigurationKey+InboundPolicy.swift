// SPDX-License-Identifier: Apache-2.0
import SMIME
/// Keys of the inbound verification policy: what the recipient sees (subject tags)
/// and what is enforced (RequireSignature).
extension ConfigurationKey {
    static let inboundPolicy: [ConfigurationKey] = [
        subjectTag("SubjectTagPass", \.subjectTagPass,
                   doc: "Text put in front of the Subject of inbound mail whose S/MIME signature passed, e.g. [signed]; a subject that already starts with it is left alone."),
        subjectTag("SubjectTagFail", \.subjectTagFail,
                   doc: "Text put in front of the Subject of inbound mail that is signed but did not pass (fail, policy, neutral, permerror), e.g. [SIGNATURE BROKEN]."),
        subjectTag("SubjectTagNone", \.subjectTagNone,
                   doc: "Text put in front of the Subject of inbound mail that is not signed (encrypted mail is not tagged), e.g. [unsigned]."),
        subjectTag("SubjectTagPartial", \.subjectTagPartial,
                   doc: "Text put in front of the Subject of inbound mail whose valid signature covers only one part of the message (smime=policy, only part N is signed), e.g. [partly signed]; neither the pass nor the fail tag applies to such mail."),
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
            name: "RevocationCheck",
            syntax: "none | crl | ocsp | ocsp,crl | crl,ocsp",
            defaultValue: "none",
            doc: "How the revocation status of certificates is found at the point of use (every certificate of an inbound signer's chain, our own signing identities at start, reload and daily): ocsp asks the responder named in each certificate's Authority Information Access, crl fetches the CRL from its CRL distribution points, both in the order given (the second when the first gives no answer); none checks only the CRLs of CRLDir. See docs/revocation.md.",
            apply: { value, _, config in config.revocation.methods = try ValueParsers.revocationMethods(value) },
            show: { $0.revocation.methods.isEmpty ? "none" : $0.revocation.methods.map(\.rawValue).joined(separator: ",") }
        ),
        ConfigurationKey(
            name: "RevocationTimeout",
            syntax: "SECONDS",
            defaultValue: "5",
            doc: "The longest a message waits for revocation answers, all certificates together (1 to 60 seconds), and the timeout of each fetch; a fetch that takes longer goes on for the cache, and the message gets OnRevocationUnknown.",
            apply: { value, _, config in config.revocation.timeout = try ValueParsers.seconds(value, range: 1...60) },
            show: { String(Int($0.revocation.timeout)) }
        ),
        ConfigurationKey(
            name: "OnRevocationUnknown",
            syntax: "accept | policy | tempfail",
            defaultValue: "accept",
            doc: "What a valid signature gets when the revocation status of a certificate of its chain cannot be found (responder down or unauthorised, stale CRL, over RevocationTimeout): accept (the result stands; the comment says the status is unknown), policy (smime=policy), or tempfail (smime=temperror and 451 4.7.5, the client retries).",
            apply: { value, _, config in config.onRevocationUnknown = try ValueParsers.choice(value, RevocationUnknownAction.self) },
            show: { $0.onRevocationUnknown.rawValue }
        ),
        ConfigurationKey(
            name: "HTTPProxy",
            syntax: "HOST:PORT | http://HOST:PORT",
            defaultValue: "none",
            doc: "The HTTP proxy through which OCSP responders and CRL distribution points are reached; the environment's http_proxy is never used.",
            apply: { value, _, config in config.revocation.proxy = try ValueParsers.proxy(value) },
            show: { $0.revocation.proxy }
        ),
        ConfigurationKey(
            name: "RevocationCacheDir",
            syntax: "PATH",
            defaultValue: "none",
            doc: "Directory (made 0700 when missing) where fetched OCSP responses and CRLs are kept until their nextUpdate, so a restart does not fetch them again; without it they are kept in memory only.",
            apply: { value, context, config in config.revocation.cacheDirectory = try context.path(value) },
            show: { $0.revocation.cacheDirectory }
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

extension ConfigurationKey {
    /// A subject-tag key: free text (none for no tag) written to one tag of the configuration.
    static func subjectTag(_ name: String, _ tag: WritableKeyPath<Configuration, String> & Sendable,
                           doc: String) -> ConfigurationKey {
        ConfigurationKey(
            name: name,
            syntax: "TEXT",
            defaultValue: "none",
            doc: doc,
            apply: { value, _, config in config[keyPath: tag] = try ValueParsers.subjectTag(value) },
            show: { $0[keyPath: tag].isEmpty ? nil : $0[keyPath: tag] }
        )
    }
}
