// SPDX-License-Identifier: Apache-2.0
/// Per-sender options given as `key=value` after the identity (or after `skip`) in a signing
/// table line.
///
/// The table of known options (`SigningOptionSpec.all`) is the one place to add one: add a
/// stored property here and an entry there. Unknown options are rejected with the list of
/// known ones.
public struct SigningOptions: Sendable, Equatable {
    /// `OnBrokenSignature=resign|strip|keep`: what to do with this sender's mail when it is
    /// already signed and the signature no longer matches. Nil: the global `OnBrokenSignature`,
    /// else the default rule (see `BrokenSignatureAction`).
    public var onBrokenSignature: BrokenSignatureAction?

    /// Options with every value at its default.
    public init(onBrokenSignature: BrokenSignatureAction? = nil) {
        self.onBrokenSignature = onBrokenSignature
    }
}

/// One `key=value` option a signing table line may carry.
struct SigningOptionSpec: Sendable {
    /// The option name as documented; matched case-insensitively.
    let name: String
    /// One-line documentation (for the manual page).
    let doc: String
    /// Stores `value` into the options, or throws `ValueProblem`.
    let apply: @Sendable (_ value: Substring, _ options: inout SigningOptions) throws -> Void

    /// Every known option.
    static let all: [SigningOptionSpec] = [
        SigningOptionSpec(
            name: "OnBrokenSignature",
            doc: "What to do with mail from this sender that is already signed by the mail client and whose signature broke on the way (a disclaimer milter, say): resign, strip or keep (see the OnBrokenSignature key).",
            apply: { value, options in options.onBrokenSignature = try ValueParsers.choice(value, BrokenSignatureAction.self) }
        ),
    ]

    /// The option called `name` (case-insensitive), if any.
    static func named(_ name: some StringProtocol) -> SigningOptionSpec? {
        let lower = name.lowercased()
        return all.first { $0.name.lowercased() == lower }
    }
}
