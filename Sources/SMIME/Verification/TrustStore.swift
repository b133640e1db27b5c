// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// The CA certificates (and optional CRLs) that signatures must chain to, as one OpenSSL
/// `X509_STORE`.
///
/// Immutable after loading and safe to share between threads: verification never changes the
/// store. Each call builds its own `X509_STORE_CTX` over it (`X509_STORE_CTX_init` only reads the
/// store, under OpenSSL's own lock) and sets the per-call things (purpose `smimesign`, the
/// validation time, CRL checking) on that context's `X509_VERIFY_PARAM`. Files are read
/// eagerly, so no lookup method fills the store lazily later. (Changing the store's own param
/// per call, as `X509_STORE_set1_param` would, races between threads; that is why the time is
/// never set on the store.)
public final class TrustStore: @unchecked Sendable {
    /// At most this many files are read from a directory, and a file may be at most this large.
    public static let maximumFiles = 10_000
    public static let maximumFileBytes = 16 << 20

    /// The `X509_STORE`, owned; never modified after `init`.
    let store: OpaquePointer
    /// Canonical DER of the issuer names that have a CRL: CRL checking is switched on for a leaf
    /// only when its issuer has one (a CRL directory for one CA must not break every other CA).
    let crlIssuers: Set<[UInt8]>
    /// Subjects of the trusted certificates (RFC 2253), for `check-config` and messages.
    public let anchorSubjects: [String]
    /// How many CRLs were loaded.
    public let crlCount: Int
    /// Files that were skipped and why (no certificate in a file of the anchor directory, ...).
    public let problems: [String]
    /// Whether certificates in the store are trusted even when they are not self-signed roots
    /// (`X509_V_FLAG_PARTIAL_CHAIN`): for pinning a partner's own certificate.
    public let trustsNonRootCertificates: Bool

    /// Loads trust anchors from PEM files and/or directories of PEM files, and CRLs (PEM or DER)
    /// from `crlDirectory`. CRLs found in the anchor files are used too.
    ///
    /// - Throws: `SMIMEError` when a named file or directory cannot be read or when no
    ///   certificate at all was found.
    public convenience init(anchors paths: [String], crlDirectory: String? = nil,
                            trustNonRootCertificates: Bool = false) throws {
        var blobs: [(name: String, bytes: [UInt8])] = []
        var problems: [String] = []
        for path in paths {
            for file in try Self.files(at: path) {
                do {
                    blobs.append((file, try Self.read(file)))
                } catch {
                    problems.append("\(file): \(error)")
                }
            }
        }
        var crlBlobs: [(name: String, bytes: [UInt8])] = []
        if let crlDirectory {
            for file in try Self.files(at: crlDirectory) {
                do {
                    crlBlobs.append((file, try Self.read(file)))
                } catch {
                    problems.append("\(file): \(error)")
                }
            }
        }
        try self.init(anchorPEMs: blobs, crls: crlBlobs, trustNonRootCertificates: trustNonRootCertificates,
                      problems: problems)
    }

    /// A store from PEM text in memory (certificates and CRLs), e.g. for tests or pinning.
    public convenience init(pem: [UInt8], crls: [[UInt8]] = [], trustNonRootCertificates: Bool = false) throws {
        try self.init(anchorPEMs: [("memory", pem)], crls: crls.enumerated().map { ("crl \($0.offset + 1)", $0.element) },
                      trustNonRootCertificates: trustNonRootCertificates, problems: [])
    }

    /// A store that trusts nothing: for checking only whether signatures are intact (outbound
    /// mail is checked even when `TrustAnchors` is not set; every chain is then "untrusted",
    /// which says nothing about integrity).
    public static func empty() throws -> TrustStore {
        try TrustStore(anchorPEMs: [], crls: [], trustNonRootCertificates: false, problems: [], allowEmpty: true)
    }

    private init(anchorPEMs: [(name: String, bytes: [UInt8])], crls crlBlobs: [(name: String, bytes: [UInt8])],
                 trustNonRootCertificates: Bool, problems initialProblems: [String], allowEmpty: Bool = false) throws {
        ERR_clear_error()
        guard let store = X509_STORE_new() else {
            throw SMIMEError(.openSSL, "cannot create an X509_STORE", openSSLErrors: OpenSSL.drainErrors())
        }
        var problems = initialProblems
        var subjects: [String] = []
        var issuers = Set<[UInt8]>()
        var crlCount = 0

        func addCRL(_ crl: OpaquePointer) {
            if X509_STORE_add_crl(store, crl) == 1 {
                crlCount += 1
                issuers.insert(Self.der(of: X509_CRL_get_issuer(crl)))
            }
        }

        for blob in anchorPEMs {
            let items = Self.pemItems(blob.bytes)
            defer { items.free() }
            var certsInFile = 0
            for cert in items.certificates {
                // Duplicates in a bundle are harmless: OpenSSL reports and ignores them.
                if X509_STORE_add_cert(store, cert) == 1 {
                    subjects.append(OpenSSL.oneLine(X509_get_subject_name(cert)))
                }
                certsInFile += 1
            }
            items.crls.forEach(addCRL)
            if certsInFile == 0 && items.crls.isEmpty {
                problems.append("\(blob.name): no PEM certificate or CRL")
            }
        }
        for blob in crlBlobs {
            let items = Self.pemItems(blob.bytes)
            defer { items.free() }
            if !items.crls.isEmpty {
                items.crls.forEach(addCRL)
            } else if let crl = Self.derCRL(blob.bytes) {
                defer { X509_CRL_free(crl) }
                addCRL(crl)
            } else {
                problems.append("\(blob.name): not a PEM or DER CRL")
            }
        }
        _ = OpenSSL.drainErrors()
        guard !subjects.isEmpty || allowEmpty else {
            X509_STORE_free(store)
            throw SMIMEError(.invalidCertificate, "no trust anchor certificate found"
                             + (problems.isEmpty ? "" : " (" + problems.joined(separator: "; ") + ")"))
        }
        if trustNonRootCertificates {
            X509_STORE_set_flags(store, UInt(X509_V_FLAG_PARTIAL_CHAIN))
        }
        self.store = store
        self.anchorSubjects = subjects
        self.crlIssuers = issuers
        self.crlCount = crlCount
        self.problems = problems
        self.trustsNonRootCertificates = trustNonRootCertificates
    }

    deinit { X509_STORE_free(store) }

    /// Whether a CRL for this issuer name (an `X509_NAME*`) was loaded.
    func hasCRL(forIssuer name: OpaquePointer?) -> Bool {
        guard let name, !crlIssuers.isEmpty else { return false }
        return crlIssuers.contains(Self.der(of: name))
    }

    // MARK: reading

    /// The files named by `path`: the file itself, or the regular files of a directory (sorted,
    /// hidden files skipped).
    static func files(at path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SMIMEError(.invalidCertificate, "\(path): no such file or directory")
        }
        guard isDirectory.boolValue else { return [path] }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw SMIMEError(.invalidCertificate, "\(path): cannot list the directory")
        }
        return names.filter { !$0.hasPrefix(".") }.sorted().prefix(maximumFiles).compactMap { name in
            let file = path + "/" + name
            var dir: ObjCBool = false
            return FileManager.default.fileExists(atPath: file, isDirectory: &dir) && !dir.boolValue ? file : nil
        }
    }

    static func read(_ file: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: file) else {
            throw SMIMEError(.invalidCertificate, "cannot read the file")
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: maximumFileBytes + 1)) ?? Data()
        guard data.count <= maximumFileBytes else {
            throw SMIMEError(.inputTooLarge, "larger than \(maximumFileBytes) bytes")
        }
        return [UInt8](data)
    }

    /// Certificates and CRLs of PEM text, owned by the returned value until `free()`.
    struct PEMItems {
        let stack: OpaquePointer?
        var certificates: [OpaquePointer] = []
        var crls: [OpaquePointer] = []
        func free() { if let stack { smime_sk_X509_INFO_pop_free(stack) } }
    }

    static func pemItems(_ bytes: [UInt8]) -> PEMItems {
        let stack: OpaquePointer? = try? OpenSSL.withMemoryBIO(bytes) { bio in
            PEM_X509_INFO_read_bio(bio, nil, nil, nil)
        }
        _ = OpenSSL.drainErrors()
        var items = PEMItems(stack: stack)
        guard let stack else { return items }
        for index in 0..<max(0, smime_sk_X509_INFO_num(stack)) {
            if let cert = smime_sk_X509_INFO_cert(stack, index) { items.certificates.append(cert) }
            if let crl = smime_sk_X509_INFO_crl(stack, index) { items.crls.append(crl) }
        }
        return items
    }

    static func derCRL(_ bytes: [UInt8]) -> OpaquePointer? {
        let crl: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509_CRL(nil, &cursor, buffer.count)
        }
        _ = OpenSSL.drainErrors()
        return crl
    }

    /// DER of an `X509_NAME` (OpenSSL keeps it cached, so equal names give equal bytes).
    static func der(of name: OpaquePointer?) -> [UInt8] {
        guard let name else { return [] }
        var out: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509_NAME(name, &out)
        guard length > 0, let out else { return [] }
        defer { smime_OPENSSL_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }
}
