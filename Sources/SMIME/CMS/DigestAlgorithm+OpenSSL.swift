// SPDX-License-Identifier: Apache-2.0
import COpenSSL

extension DigestAlgorithm {
    /// OpenSSL's `EVP_MD*` for this digest (static objects, never freed).
    var evpMD: OpaquePointer? {
        switch self {
        case .sha256: return EVP_sha256()
        case .sha384: return EVP_sha384()
        case .sha512: return EVP_sha512()
        }
    }
}
