// SPDX-License-Identifier: Apache-2.0
import COpenSSL

/// Makes CMS SignedData (RFC 5652) for S/MIME with OpenSSL's CMS API.
///
/// Safe to call concurrently, also with one shared identity: each call builds its own
/// CMS_ContentInfo, only takes references to the identity's certificate, chain and key, and
/// OpenSSL 3 allows concurrent signing with one EVP_PKEY. The OpenSSL error queue is per
/// thread; it is emptied at the start and drained into the thrown error.
public enum CMSSigner {
    /// Signs `content` and returns the DER-encoded ContentInfo(SignedData).
    ///
    /// - Parameters:
    ///   - content: the bytes to sign, already canonical (CRLF line ends); signed as they are.
    ///   - identity: the signer; its certificate and intermediates (never the root) are included.
    ///   - digest: the message digest; RSA keys sign with PKCS#1 v1.5, EC keys with ECDSA;
    ///     an Ed25519 identity needs its `requiredDigest` (SHA-512).
    ///   - detached: true for multipart/signed (eContent absent), false for opaque signed-data.
    /// - Returns: DER with signed attributes contentType, messageDigest, signingTime,
    ///   SMIMECapabilities (OpenSSL's defaults) and ESS signingCertificateV2.
    public static func sign(content: [UInt8], identity: SigningIdentity, digest: DigestAlgorithm,
                            detached: Bool) throws -> [UInt8] {
        try sign(identity: identity, digest: digest, detached: detached) { write in
            try content.withUnsafeBytes { try write($0) }
        }
    }

    /// Signs content that is written piece by piece (a large spooled body) and returns the
    /// DER-encoded ContentInfo(SignedData), exactly as `sign(content:...)` would for the
    /// concatenated pieces: OpenSSL hashes each piece as it comes (what `CMS_final` does).
    ///
    /// - Parameter writeContent: called once with a `write` function; it passes the content in
    ///   order. `write` throws when OpenSSL refuses a piece.
    public static func sign(identity: SigningIdentity, digest: DigestAlgorithm, detached: Bool,
                            writeContent: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> [UInt8] {
        ERR_clear_error()
        if let required = identity.requiredDigest, required != digest {
            throw SMIMEError(.signingFailed, "\(identity.keyDescription) signatures use \(required.rawValue), "
                             + "not \(digest.rawValue) (RFC 8419)")
        }
        // A token key is used holding one token session (see TokenKey).
        return try identity.withPrivateKey { privateKey in
            try sign(identity: identity, privateKey: privateKey, digest: digest, detached: detached,
                     writeContent: writeContent)
        }
    }

    private static func sign(identity: SigningIdentity, privateKey: OpaquePointer, digest: DigestAlgorithm, detached: Bool,
                             writeContent: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> [UInt8] {
        var flags = UInt32(CMS_PARTIAL | CMS_BINARY)
        if detached { flags |= UInt32(CMS_DETACHED) }
        let cms = try signedData(identity: identity, privateKey: privateKey, digest: digest, flags: flags)
        defer { CMS_ContentInfo_free(cms) }
        guard let bio = CMS_dataInit(cms, nil) else { throw failure("cannot start the content of the SignedData") }
        defer { BIO_free_all(bio) }
        try writeContent { piece in
            guard let base = piece.baseAddress else { return }
            var offset = 0
            while offset < piece.count {
                let n = BIO_write(bio, base + offset, Int32(clamping: piece.count - offset))
                guard n > 0 else { throw failure("cannot hash the content") }
                offset += Int(n)
            }
        }
        _ = BIO_ctrl(bio, BIO_CTRL_FLUSH, 0, nil)
        guard CMS_dataFinal(cms, bio) == 1 else {
            throw failure("cannot sign with \(identity.name) (\(identity.keyDescription), \(digest.rawValue))")
        }
        return try encode(cms)
    }

    /// A SignedData (caller frees it) with the identity's chain and one signer whose signed
    /// attributes are OpenSSL's defaults, SMIMECapabilities and ESS signingCertificateV2.
    private static func signedData(identity: SigningIdentity, privateKey: OpaquePointer, digest: DigestAlgorithm,
                                   flags: UInt32) throws -> OpaquePointer {
        // CMS_BINARY: the content is already canonical; text mode would re-canonicalise it.
        // CMS_PARTIAL: add the signer ourselves to choose the digest.
        // CMS_CADES: add ESS signingCertificateV2, which binds the signer certificate.
        guard let cms = CMS_sign(nil, nil, identity.chain, nil, flags) else {
            throw failure("cannot create the SignedData")
        }
        var done = false
        defer { if !done { CMS_ContentInfo_free(cms) } }
        guard let md = digest.evpMD else {
            throw failure("digest \(digest.rawValue) is not available")
        }
        // The SMIMECapabilities attribute is the same for every signature: OpenSSL's default,
        // encoded once (building it looks up a dozen algorithms by name and fails on the GOST
        // ones, raising and clearing errors, on every call). Signed attributes are a DER SET OF,
        // sorted when encoded, so adding it after the signer gives the same bytes.
        // Likewise the ESS signingCertificateV2 (CMS_CADES), made once per identity and digest.
        let capabilities = Self.standardCapabilities
        let signingCertificate = identity.essSigningCertificateV2[digest] ?? []
        var signerFlags = flags
        signerFlags |= capabilities.isEmpty ? 0 : UInt32(CMS_NOSMIMECAP)
        signerFlags |= signingCertificate.isEmpty ? UInt32(CMS_CADES) : 0
        guard let signer = CMS_add1_signer(cms, identity.certificate, privateKey, md, signerFlags) else {
            throw failure("cannot add the signer \(identity.name)")
        }
        for (nid, der) in [(NID_SMIMECapabilities, capabilities), (NID_id_smime_aa_signingCertificateV2, signingCertificate)]
        where !der.isEmpty {
            let added = der.withUnsafeBytes { bytes in
                CMS_signed_add1_attr_by_NID(signer, nid, V_ASN1_SEQUENCE, bytes.baseAddress, Int32(bytes.count))
            }
            guard added == 1 else { throw failure("cannot add a signed attribute to the signature") }
        }
        done = true
        return cms
    }

    /// Signs content that is written piece by piece into opaque SignedData (the content inside
    /// the signature) and writes it to the file `fd` while hashing: OpenSSL's streaming
    /// encoder (`BIO_new_CMS`, CMS_STREAM) writes the content as it comes, as BER with
    /// indefinite lengths, and the signer information once the content has ended. Neither
    /// the content nor the SignedData is held in memory, so a large body can be signed opaque.
    ///
    /// - Parameters:
    ///   - fd: a file open for writing; it is not closed.
    ///   - writeContent: as for `sign(identity:digest:detached:writeContent:)`.
    public static func signOpaque(identity: SigningIdentity, digest: DigestAlgorithm, to fd: Int32,
                                  writeContent: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        ERR_clear_error()
        if let required = identity.requiredDigest, required != digest {
            throw SMIMEError(.signingFailed, "\(identity.keyDescription) signatures use \(required.rawValue), "
                             + "not \(digest.rawValue) (RFC 8419)")
        }
        try identity.withPrivateKey { privateKey in
            let cms = try signedData(identity: identity, privateKey: privateKey, digest: digest,
                                     flags: UInt32(CMS_PARTIAL | CMS_BINARY | CMS_STREAM))
            defer { CMS_ContentInfo_free(cms) }
            guard let file = BIO_new_fd(fd, BIO_NOCLOSE) else { throw failure("cannot open the output of the SignedData") }
            // Buffered: the encoder writes a few bytes of header per piece.
            guard let out = BIO_push(BIO_new(BIO_f_buffer()), file) else {
                BIO_free(file)
                throw failure("cannot open the output of the SignedData")
            }
            defer { BIO_free_all(out) }
            guard let chain = BIO_new_CMS(out, cms) else { throw failure("cannot start the content of the SignedData") }
            defer {
                // Free the encoder's BIOs down to (not including) `out`, as SMIME_write_ASN1 does.
                var bio: OpaquePointer? = chain
                while let current = bio, current != out {
                    bio = BIO_pop(current)
                    BIO_free(current)
                }
            }
            try writeContent { piece in
                guard let base = piece.baseAddress else { return }
                var offset = 0
                while offset < piece.count {
                    let n = BIO_write(chain, base + offset, Int32(clamping: piece.count - offset))
                    guard n > 0 else { throw failure("cannot write the content of the SignedData") }
                    offset += Int(n)
                }
            }
            // The flush ends the content, signs and writes the signer information.
            guard BIO_ctrl(chain, BIO_CTRL_FLUSH, 0, nil) > 0 else {
                throw failure("cannot sign with \(identity.name) (\(identity.keyDescription), \(digest.rawValue))")
            }
            guard BIO_ctrl(out, BIO_CTRL_FLUSH, 0, nil) > 0 else { throw failure("cannot write the SignedData") }
        }
    }

    /// The DER of OpenSSL's default SMIMECapabilities, made on first use; empty when it cannot
    /// be made (CMS_add1_signer then adds it itself).
    static let standardCapabilities: [UInt8] = {
        var der: UnsafeMutablePointer<UInt8>?
        let length = smime_standard_smimecap_der(&der)
        defer { if let der { smime_OPENSSL_free(der) } }
        _ = OpenSSL.drainErrors()
        guard length > 0, let der else { return [] }
        return Array(UnsafeBufferPointer(start: der, count: Int(length)))
    }()

    private static func encode(_ cms: OpaquePointer) throws -> [UInt8] {
        // One encoding pass: with a nil buffer OpenSSL allocates the output itself (asking for
        // the length first would encode the whole SignedData twice).
        var allocated: UnsafeMutablePointer<UInt8>?
        let length = i2d_CMS_ContentInfo(cms, &allocated)
        guard length > 0, let allocated else { throw failure("cannot encode the SignedData") }
        defer { smime_OPENSSL_free(allocated) }
        return Array(UnsafeBufferPointer(start: allocated, count: Int(length)))
    }

    private static func failure(_ message: String) -> SMIMEError {
        SMIMEError(.signingFailed, message, openSSLErrors: OpenSSL.drainErrors())
    }
}
