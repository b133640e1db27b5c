// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// The kind of key made for a new identity (`KeyType`).
public enum NewKeyType: String, Sendable, CaseIterable, Equatable {
    /// RSA with a 3072-bit modulus (the default: every S/MIME client verifies and encrypts to it).
    case rsa3072
    /// ECDSA on NIST P-256 (smaller and faster; a few old clients cannot encrypt to it).
    case p256
}

/// A private key made here for enrolment, held as an OpenSSL `EVP_PKEY`.
public final class NewKey: @unchecked Sendable {
    /// The key (owned; freed on deinit). Never modified after init.
    let pkey: OpaquePointer
    /// What kind of key it is.
    public let type: NewKeyType
    /// The key's URI when it is on a token (the private key never leaves it), else nil.
    public let tokenURI: PKCS11URI?

    /// Generates a key of `type` with OpenSSL's default random generator.
    public init(generating type: NewKeyType) throws {
        let made: OpaquePointer?
        switch type {
        case .rsa3072: made = smime_keygen_rsa(3072)
        case .p256: made = smime_keygen_ec("P-256")
        }
        guard let made else {
            throw SMIMEError(.openSSL, "cannot generate a \(type.rawValue) key", openSSLErrors: OpenSSL.drainErrors())
        }
        pkey = made
        self.type = type
        tokenURI = nil
    }

    /// A key on a token, loaded through the pkcs11 engine (`TokenKeyGenerator`, or a renewal
    /// that keeps a token key).
    public init(tokenURI: PKCS11URI, settings: TokenSettings) throws {
        let token = TokenKey(uri: tokenURI, settings: settings)
        let key: OpaquePointer = try token.withKey { handle in
            guard EVP_PKEY_up_ref(handle) == 1 else { throw SMIMEError(.openSSL, "cannot reference the token key") }
            return handle
        }
        pkey = key
        type = EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ? .p256 : .rsa3072
        self.tokenURI = tokenURI
    }

    /// Reads an unencrypted PEM private key (a key made here and kept in `NAME.key`).
    public init(pem: [UInt8]) throws {
        guard let key = try PEMReader.privateKey(in: pem, passphrase: nil) else {
            throw SMIMEError(.openSSL, "no private key in the key file", openSSLErrors: OpenSSL.drainErrors())
        }
        pkey = key
        type = EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ? .p256 : .rsa3072
        tokenURI = nil
    }

    deinit { EVP_PKEY_free(pkey) }

    /// Whether the key is RSA (it can do key transport, so keyEncipherment is asked for).
    public var isRSA: Bool { EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA }

    /// What `NAME.key` holds: the token key's URI, or the private key as PEM.
    public func keyFileContents() throws -> [UInt8] {
        if let tokenURI { return Array((tokenURI.engineURI + "\n").utf8) }
        return try privateKeyPEM()
    }

    /// The private key as unencrypted PKCS#8 PEM, for a 0600 file. Key material: never log it.
    public func privateKeyPEM() throws -> [UInt8] {
        guard tokenURI == nil else { throw SMIMEError(.tokenUnavailable, "a key on a token cannot be written to a file") }
        guard let bio = BIO_new(BIO_s_mem()) else { throw SMIMEError(.openSSL, "out of memory") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, pkey, nil, nil, 0, nil, nil) == 1 else {
            throw SMIMEError(.openSSL, "cannot write the private key", openSSLErrors: OpenSSL.drainErrors())
        }
        return OpenSSL.contents(ofMemoryBIO: bio)
    }
}
