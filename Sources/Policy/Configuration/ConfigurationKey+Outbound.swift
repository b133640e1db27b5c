// SPDX-License-Identifier: Apache-2.0
/// Keys for outbound mail that is already signed by the user's mail client.
extension ConfigurationKey {
    static let outbound: [ConfigurationKey] = [
        ConfigurationKey(
            name: "OnBrokenSignature",
            syntax: "resign | strip | keep",
            defaultValue: "resign when an identity for the From address exists, else strip",
            doc: "Outbound mail already signed by the mail client whose signature no longer matches (a disclaimer added on the way): resign removes the broken signature and signs with our identity (never for an address the submitter may not use: then strip), strip removes it and warns, keep leaves it; a SigningTable line's OnBrokenSignature= option overrides this per sender.",
            apply: { value, _, config in config.onBrokenSignature = try ValueParsers.choice(value, BrokenSignatureAction.self) },
            show: { $0.onBrokenSignature?.rawValue }
        ),
        ConfigurationKey(
            name: "BrokenSignatureReport",
            syntax: "ADDRESS",
            defaultValue: "none",
            doc: "Mail a short report to this address through SendmailCommand when a broken client signature is stripped, at most one per sender per hour.",
            apply: { value, _, config in config.brokenSignatureReport = try ValueParsers.mailAddress(value) },
            show: { $0.brokenSignatureReport }
        ),
        ConfigurationKey(
            name: "HeaderProtection",
            syntax: "yes | no",
            defaultValue: "no",
            doc: "Sign outbound mail with RFC 9788 header protection: From, To, Cc, Subject, Date, Message-ID and Reply-To are copied into the signed part, whose Content-Type gets hp=\"clear\", so a receiver can tell a header changed on the way.",
            apply: { value, _, config in config.headerProtection = try ValueParsers.boolean(value) },
            show: { $0.headerProtection ? "yes" : "no" }
        ),
    ]
}
