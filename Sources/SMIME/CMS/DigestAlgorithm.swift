// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The message digest used for a CMS signature (RFC 8551 §2.1: SHA-256 and SHA-512 are MUST).
public enum DigestAlgorithm: String, Sendable, CaseIterable {
    case sha256
    case sha384
    case sha512

    /// The `micalg` parameter value of multipart/signed (RFC 8551 §3.5.3.2).
    public var micalg: String {
        switch self {
        case .sha256: return "sha-256"
        case .sha384: return "sha-384"
        case .sha512: return "sha-512"
        }
    }

    /// Parses a configuration value: `sha256`, `sha-256`, `SHA256`, ...
    public init?(configValue: String) {
        let v = configValue.lowercased().replacingOccurrences(of: "-", with: "")
        self.init(rawValue: v)
    }
}
