// SPDX-License-Identifier: Apache-2.0
/// How a signed message is packaged.
public enum SignatureForm: String, Sendable, Equatable, CaseIterable {
    /// `multipart/signed` (clear-signed): readable without S/MIME support. The default.
    case detached
    /// `application/pkcs7-mime; smime-type=signed-data`: content inside the signature.
    case opaque
}
