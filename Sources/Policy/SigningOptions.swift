/// Per-sender options given as `key=value` after the identity in a signing table line.
///
/// No option is defined yet; the table of known options (`SigningOptionSpec.all`) is the one
/// place to add one (e.g. a later `OnBrokenSignature=resign|strip|keep`): add a stored property
/// here and an entry there. Unknown options are rejected with the list of known ones.
public struct SigningOptions: Sendable, Equatable {
    /// Options with every value at its default.
    public init() {}
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
    static let all: [SigningOptionSpec] = []

    /// The option called `name` (case-insensitive), if any.
    static func named(_ name: some StringProtocol) -> SigningOptionSpec? {
        let lower = name.lowercased()
        return all.first { $0.name.lowercased() == lower }
    }
}
