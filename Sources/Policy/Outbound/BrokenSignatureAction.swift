// SPDX-License-Identifier: Apache-2.0
/// What happens to outbound mail that the user's mail client signed and whose signature broke
/// before it reached us (a disclaimer milter before ours, a content filter): `OnBrokenSignature`,
/// per sender in the `SigningTable` or globally.
///
/// Default (neither set): `resign` when an identity for the From address exists, else `strip`.
public enum BrokenSignatureAction: String, Sendable, Equatable, CaseIterable {
    /// Remove the broken signature layer and sign the content as it is now with our identity for
    /// the From address, under the same authorisation rules as any signing. When we may not or
    /// cannot sign (no identity, submitter may not use the From address), `strip` applies.
    case resign
    /// Remove the broken signature layer, keep the content as it is now, and warn (log line,
    /// `X-SMIME-Milter` header, `BrokenSignatureReport` mail).
    case strip
    /// Leave the message as it is (recipients see a broken signature); log it.
    case keep
}
