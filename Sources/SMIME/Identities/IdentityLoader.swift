// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// Loads and checks one signing identity from its files.
///
/// Accepted layouts: `NAME.pem` with the certificate, its intermediates and the private key;
/// `NAME.pem` with the certificates and `NAME.key` with the key; `NAME.p12` (or `.pfx`) with
/// the passphrase in `NAME.pass` (trailing newline stripped). An encrypted PEM key also takes
/// its passphrase from `NAME.pass`. Files holding a key or passphrase must not be accessible
/// by group or others. Self-signed certificates (roots) are dropped from the chain.
/// A `NAME.key` holding a `pkcs11:` URI (RFC 7512) names a key that stays on a PKCS#11 token,
/// reached with `TokenSettings`; the certificates are in `NAME.pem` as for a key file.
public enum IdentityLoader {
    /// Loads identity `name` from `directory`, finding its files by the layouts above.
    public static func load(name: String, directory: String, now: Date = Date(), allowExpired: Bool = false, forDecryption: Bool = false,
                            tokens: TokenSettings = TokenSettings()) throws(IdentityProblem) -> SigningIdentity {
        let base = (directory as NSString).appendingPathComponent(name)
        let manager = FileManager.default
        let existing: (String) -> String? = { manager.fileExists(atPath: base + $0) ? base + $0 : nil }
        let pass = existing(".pass")
        if let pem = existing(".pem") {
            if existing(".p12") != nil || existing(".pfx") != nil {
                throw IdentityProblem(file: pem, reason: "both \(name).pem and a PKCS#12 file exist; keep one")
            }
            return try loadPEM(name: name, certificateFile: pem, keyFile: existing(".key"), passphraseFile: pass, now: now,
                               allowExpired: allowExpired, forDecryption: forDecryption, tokens: tokens)
        }
        if let p12 = existing(".p12") ?? existing(".pfx") {
            return try loadPKCS12(name: name, file: p12, passphraseFile: pass, now: now, allowExpired: allowExpired, forDecryption: forDecryption)
        }
        let orphan = existing(".key") ?? pass ?? base
        throw IdentityProblem(file: orphan, reason: "no certificate: expected \(name).pem or \(name).p12")
    }

    /// Loads a PEM identity: certificates (and maybe the key) from `certificateFile`, or the key
    /// from `keyFile`; `passphraseFile` only for an encrypted PEM key.
    public static func loadPEM(name: String, certificateFile: String, keyFile: String?,
                               passphraseFile: String? = nil, now: Date = Date(), allowExpired: Bool = false, forDecryption: Bool = false,
                               tokens: TokenSettings = TokenSettings()) throws(IdentityProblem) -> SigningIdentity {
        let certificateContents = try SecureFile.read(certificateFile, secret: false)
        let embeddedKey = PEMReader.containsPrivateKey(certificateContents.bytes)
        if embeddedKey && certificateContents.isAccessibleByOthers {
            throw SecureFile.permissionProblem(certificateFile, mode: certificateContents.mode)
        }
        if embeddedKey, let keyFile {
            throw IdentityProblem(file: keyFile, reason: "the private key is both in \(certificateFile) and here; keep one")
        }
        let certs: [OpaquePointer]
        do {
            certs = try PEMReader.certificates(in: certificateContents.bytes)
        } catch {
            throw IdentityProblem(file: certificateFile, reason: "cannot read: \(error)")
        }
        var owned = OwnedCertificates(certs)
        guard !certs.isEmpty else {
            throw IdentityProblem(file: certificateFile, reason: "no PEM certificate found (garbage or not PEM)")
        }

        let keyPath = embeddedKey ? certificateFile : keyFile
        guard let keyPath else {
            throw IdentityProblem(file: certificateFile,
                                  reason: "no private key: put it in \(name).pem or \(name).key, or use \(name).p12")
        }
        let keyBytes: [UInt8]
        if embeddedKey {
            keyBytes = certificateContents.bytes
        } else {
            switch try readKeyFile(keyPath) {
            case let .uri(uri):
                return try assemble(name: name, file: certificateFile, certificates: owned.release(),
                                    key: .token(TokenKey(uri: uri, settings: tokens)),
                                    sourceFiles: [certificateFile, keyPath], now: now, allowExpired: allowExpired, forDecryption: forDecryption)
            case let .pem(bytes):
                keyBytes = bytes
            }
        }
        guard PEMReader.containsPrivateKey(keyBytes) else {
            throw IdentityProblem(file: keyPath, reason: "no PEM private key found")
        }
        let passphrase = try passphraseFile.map { path throws(IdentityProblem) in try readPassphrase(path) }
        let key: OpaquePointer?
        do {
            key = try PEMReader.privateKey(in: keyBytes, passphrase: passphrase)
        } catch {
            throw IdentityProblem(file: keyPath, reason: "cannot read the private key: \(error)")
        }
        guard let key else {
            let errors = OpenSSL.drainErrors()
            let hint = passphrase == nil ? " (encrypted without \(name).pass, or corrupt)" : " (wrong passphrase or corrupt)"
            throw IdentityProblem(file: keyPath, reason: "cannot read the private key" + hint + detail(errors))
        }
        var sources = [certificateFile]
        if keyPath != certificateFile { sources.append(keyPath) }
        if let passphraseFile, passphrase != nil { sources.append(passphraseFile) }
        return try assemble(name: name, file: certificateFile, certificates: owned.release(), key: .memory(key),
                            sourceFiles: sources, now: now, allowExpired: allowExpired, forDecryption: forDecryption)
    }

    /// Loads a PKCS#12 identity; without `passphraseFile` an empty passphrase is tried.
    public static func loadPKCS12(name: String, file: String, passphraseFile: String?,
                                  now: Date = Date(), allowExpired: Bool = false, forDecryption: Bool = false) throws(IdentityProblem) -> SigningIdentity {
        let bytes = try SecureFile.read(file, secret: true).bytes
        let passphrase = try passphraseFile.map { path throws(IdentityProblem) in try readPassphrase(path) } ?? []
        let parsed: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_PKCS12(nil, &cursor, buffer.count)
        }
        guard let p12 = parsed else {
            throw IdentityProblem(file: file, reason: "not a PKCS#12 file (garbage or truncated)" + detail(OpenSSL.drainErrors()))
        }
        defer { PKCS12_free(p12) }

        var secret: [CChar] = passphrase.map { CChar(bitPattern: $0) } + [0]
        defer { for index in secret.indices { secret[index] = 0 } }
        if PKCS12_mac_present(p12) == 1,
           PKCS12_verify_mac(p12, secret, Int32(passphrase.count)) != 1 {
            _ = OpenSSL.drainErrors()
            let reason = passphraseFile == nil
                ? "PKCS#12 file needs a passphrase: put it in \(name).pass"
                : "wrong PKCS#12 passphrase (integrity check failed)"
            throw IdentityProblem(file: file, reason: reason)
        }
        var key: OpaquePointer?
        var cert: OpaquePointer?
        var extra: OpaquePointer?
        guard PKCS12_parse(p12, secret, &key, &cert, &extra) == 1 else {
            throw IdentityProblem(file: file, reason: "cannot decrypt the PKCS#12 contents (wrong passphrase or unsupported algorithm)"
                                  + detail(OpenSSL.drainErrors()))
        }
        var certs: [OpaquePointer] = cert.map { [$0] } ?? []
        if let extra {
            for index in 0..<max(0, smime_sk_X509_num(extra)) {
                if let other = smime_sk_X509_value(extra, index), X509_up_ref(other) == 1 {
                    certs.append(other)
                }
            }
            smime_sk_X509_pop_free(extra)
        }
        var owned = OwnedCertificates(certs)
        guard let key else {
            throw IdentityProblem(file: file, reason: "PKCS#12 file holds no private key")
        }
        guard !certs.isEmpty else {
            EVP_PKEY_free(key)
            throw IdentityProblem(file: file, reason: "PKCS#12 file holds no certificate")
        }
        var sources = [file]
        if let passphraseFile { sources.append(passphraseFile) }
        return try assemble(name: name, file: file, certificates: owned.release(), key: .memory(key),
                            sourceFiles: sources, now: now, allowExpired: allowExpired, forDecryption: forDecryption)
    }

    /// Picks the end-entity certificate (the one matching the key), checks it, builds the chain.
    /// Takes ownership of `certificates` and `key` whatever the outcome.
    static func assemble(name: String, file: String, certificates: [OpaquePointer], key: SigningIdentity.PrivateKey,
                         sourceFiles: [String], now: Date, allowExpired: Bool = false, forDecryption: Bool = false) throws(IdentityProblem) -> SigningIdentity {
        var owned = OwnedCertificates(certificates)
        var keyOwned: OpaquePointer?
        if case let .memory(pointer) = key { keyOwned = pointer }
        defer { if let keyOwned { EVP_PKEY_free(keyOwned) } }

        let matching: Int?
        switch key {
        case let .memory(pointer):
            matching = certificates.firstIndex { X509_check_private_key($0, pointer) == 1 }
        case let .token(tokenKey):
            do {
                matching = try tokenKey.withKey { pointer in
                    certificates.firstIndex { X509_check_private_key($0, pointer) == 1 }
                }
            } catch {
                throw IdentityProblem(file: sourceFiles.last ?? file, reason: "token key \(tokenKey.uri): \(error)")
            }
        }
        guard let leafIndex = matching else {
            _ = OpenSSL.drainErrors()
            throw IdentityProblem(file: file, reason: "the private key does not match any certificate in the file")
        }
        _ = OpenSSL.drainErrors()
        let leaf = certificates[leafIndex]
        let info: CertificateInfo
        do {
            info = try CertificateInfo(x509: leaf)
        } catch {
            throw IdentityProblem(file: file, reason: "\(error)")
        }
        if let reason = IdentityChecks.problem(with: leaf, info: info, now: now, allowExpired: allowExpired, forDecryption: forDecryption) {
            throw IdentityProblem(file: file, reason: reason)
        }

        guard let chain = smime_sk_X509_new_null() else {
            throw IdentityProblem(file: file, reason: "out of memory")
        }
        var chainSubjects: [String] = []
        var rest = owned.release()
        rest.remove(at: leafIndex)
        for cert in rest {
            // Filling the extension cache now keeps later, concurrent use read-only.
            _ = X509_check_purpose(cert, -1, 0)
            let isRoot = X509_self_signed(cert, 0) == 1
            let isDuplicate = X509_cmp(cert, leaf) == 0
            if isRoot || isDuplicate || smime_sk_X509_push(chain, cert) <= 0 {
                X509_free(cert)
            } else {
                chainSubjects.append(OpenSSL.oneLine(X509_get_subject_name(cert)))
            }
        }
        _ = OpenSSL.drainErrors()
        keyOwned = nil
        let identity = SigningIdentity(name: name, certificate: leaf, privateKey: key, chain: chain,
                                       certificateInfo: info, chainSubjects: chainSubjects, sourceFiles: sourceFiles)
        // A trial signature finds keys this OpenSSL's CMS cannot sign with (Ed25519 before
        // OpenSSL 3.2, Ed448, exotic curves) at load time rather than on the first message.
        do {
            _ = try CMSSigner.sign(content: [], identity: identity, digest: identity.requiredDigest ?? .sha256,
                                   detached: true)
        } catch {
            throw IdentityProblem(file: file, reason: "OpenSSL cannot make a CMS signature with this "
                                  + "\(identity.keyDescription) key: \(error)")
        }
        return identity
    }

    /// What a `NAME.key` holds: a `pkcs11:` URI naming a token key, or (PEM) key bytes.
    enum KeyFileContents {
        case uri(PKCS11URI)
        case pem([UInt8])
    }

    /// Reads a key file. A key file must not be accessible by group or others, except one that
    /// holds only a `pkcs11:` URI, which is no secret: only such an open file is read at all.
    static func readKeyFile(_ path: String) throws(IdentityProblem) -> KeyFileContents {
        let bytes: [UInt8]
        do {
            bytes = try SecureFile.read(path, secret: true).bytes
        } catch {
            // Refused as open to others: it may still be a URI (readable by anyone anyway).
            guard let open = try? SecureFile.read(path, secret: false).bytes, startsWithURI(open) else { throw error }
            return .uri(try uri(in: open, file: path))
        }
        return startsWithURI(bytes) ? .uri(try uri(in: bytes, file: path)) : .pem(bytes)
    }

    private static func startsWithURI(_ bytes: [UInt8]) -> Bool {
        let start = bytes.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }.prefix(7)
        return String(decoding: start, as: UTF8.self).lowercased() == "pkcs11:"
    }

    private static func uri(in bytes: [UInt8], file: String) throws(IdentityProblem) -> PKCS11URI {
        do {
            return try PKCS11URI(String(decoding: bytes, as: UTF8.self))
        } catch {
            throw IdentityProblem(file: file, reason: "bad pkcs11 URI: \(error.reason)")
        }
    }

    /// Reads a passphrase file (a secret: permissions checked) and strips trailing CR/LF.
    static func readPassphrase(_ path: String) throws(IdentityProblem) -> [UInt8] {
        var bytes = try SecureFile.read(path, secret: true).bytes
        while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
        if bytes.contains(0) {
            throw IdentityProblem(file: path, reason: "passphrase file contains a NUL byte")
        }
        return bytes
    }

    /// " (OpenSSL: a; b)" or "".
    static func detail(_ errors: [String]) -> String {
        errors.isEmpty ? "" : " (OpenSSL: " + errors.joined(separator: "; ") + ")"
    }
}

/// Frees the certificates it holds unless they were released to a new owner.
struct OwnedCertificates: ~Copyable {
    private var certificates: [OpaquePointer]

    init(_ certificates: [OpaquePointer]) { self.certificates = certificates }

    /// Hands the certificates to the caller, who then frees them.
    mutating func release() -> [OpaquePointer] {
        defer { certificates = [] }
        return certificates
    }

    deinit { certificates.forEach { X509_free($0) } }
}
