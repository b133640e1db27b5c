// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// Checks CMS SignedData (RFC 5652) with OpenSSL: signature and digest with `CMS_verify`, then
/// every signer's certificate path with `X509_verify_cert` (purpose `smimesign`) at a chosen time.
///
/// The two steps are separate so the outcome can say *which* check failed: `CMS_verify` runs with
/// `CMS_NO_SIGNER_CERT_VERIFY` (signature and digest only), and the path is then validated with
/// a per-call `X509_STORE_CTX` set up exactly as `CMS_verify` does internally
/// (`X509_STORE_CTX_set_default(ctx, "smime_sign")`, the message's certificates as untrusted
/// intermediates, its CRLs). The time and CRL flag are set on that context, never on the shared
/// store, so concurrent calls are safe. OpenSSL's error queue is per thread and is emptied.
public struct CMSVerifier: Sendable {
    /// The CA certificates and CRLs.
    public let trust: TrustStore
    /// At most this many certificates in one SignedData (more: `limitExceeded`).
    public var maxCertificates: Int
    /// At most this many SignerInfos.
    public var maxSigners: Int
    /// The longest certificate chain that is tried.
    public var maxChainDepth: Int
    /// Checks the revocation status of every certificate of each validated chain (OCSP, CRLs
    /// fetched from distribution points); nil for CRLDir only.
    public var revocation: RevocationChecker?

    public init(trust: TrustStore, maxCertificates: Int = 50, maxSigners: Int = 8, maxChainDepth: Int = 10,
                revocation: RevocationChecker? = nil) {
        self.revocation = revocation
        self.trust = trust
        self.maxCertificates = maxCertificates
        self.maxSigners = maxSigners
        self.maxChainDepth = maxChainDepth
    }

    /// Checks a DER ContentInfo.
    ///
    /// - Parameters:
    ///   - signedData: the DER ContentInfo (the decoded `.p7s` or `.p7m`).
    ///   - detachedContent: for multipart/signed, part 1's exact canonical bytes. The digest is then
    ///     computed over these bytes and never over an eContent the signature might carry; an
    ///     eContent that differs from them is refused outright (CVE-2018-18509). Nil for opaque
    ///     signed-data, whose eContent is returned in `content`.
    ///   - time: the time the certificates are validated at.
    public func verify(signedData: [UInt8], detachedContent: [UInt8]?, at time: Date) -> CMSVerification {
        do {
            return try verify(signedData: signedData, detached: detachedContent.map { .memory($0) } ?? .none, at: time)
        } catch {
            // Only a file is read; content in memory cannot fail to be read.
            return CMSVerification(status: .malformed("\(error)"))
        }
    }

    /// `verify(signedData:detachedContent:at:)` with part 1 read from the spool file, a piece
    /// at a time (never in memory whole): the same checks, the same outcome. An eContent
    /// beside it is compared with the file range piece by piece and refused unless identical.
    ///
    /// - Throws: `BodyFile.ReadError` when the file cannot be read (not a verification result:
    ///   the caller treats it like any unreadable spooled body).
    public func verify(signedData: [UInt8], detachedContent: FileRangeContent, at time: Date) throws -> CMSVerification {
        try verify(signedData: signedData, detached: .file(detachedContent), at: time)
    }

    /// Where detached content comes from.
    private enum Detached {
        case none
        case memory([UInt8])
        case file(FileRangeContent)
    }

    private func verify(signedData: [UInt8], detached: Detached, at time: Date) throws -> CMSVerification {
        ERR_clear_error()
        defer { ERR_clear_error() }
        guard !signedData.isEmpty else { return CMSVerification(status: .malformed("the signature is empty")) }
        // Each distinct certificate decoded once per process (see CMSParser for why and how).
        let parsed = CMSParser.parse(signedData)
        guard let cms = parsed else {
            return CMSVerification(status: .malformed("the signature is not a valid CMS structure ("
                                                      + "\(signedData.count) bytes)"))
        }
        defer { CMS_ContentInfo_free(cms) }
        let kind = Self.kind(of: cms)
        guard kind == .signedData else { return CMSVerification(status: .notSignedData(kind)) }

        guard let infos = CMS_get0_SignerInfos(cms) else { return CMSVerification(status: .noSigners) }
        let signerCount = Int(smime_sk_CMS_SignerInfo_num(infos))
        if signerCount <= 0 { return CMSVerification(status: .noSigners) }
        if signerCount > maxSigners {
            return CMSVerification(status: .limitExceeded("the signature has \(signerCount) signers; at most \(maxSigners) are checked"))
        }
        let certs = CMS_get1_certs(cms)   // owned copies (up-referenced); nil when there are none
        defer { if let certs { smime_sk_X509_pop_free(certs) } }
        let certCount = certs.map { Int(smime_sk_X509_num($0)) } ?? 0
        if certCount > maxCertificates {
            return CMSVerification(status: .limitExceeded("the signature carries \(certCount) certificates; at most \(maxCertificates) are accepted"))
        }

        if let embedded = smime_CMS_econtent(cms) {
            // RFC 8551 §3.5.3.1: eContent MUST be absent in a detached signature. Identical bytes
            // are harmless; different ones are the CVE-2018-18509 trick.
            let length = max(0, Int(ASN1_STRING_length(embedded)))
            let data = ASN1_STRING_get0_data(embedded)
            let bytes = UnsafeRawBufferPointer(start: data.map { UnsafeRawPointer($0) }, count: data == nil ? 0 : length)
            let same: Bool
            switch detached {
            case .none: same = true   // opaque signed-data: the eContent is the content
            case .memory(let content): same = bytes.elementsEqual(content)
            case .file(let content): same = try content.equals(bytes)
            }
            if !same { return CMSVerification(status: .embeddedContentDiffers) }
        }

        // Step 1: signature and digest only.
        var extracted: [UInt8]?
        var failure: [(reason: Int32, text: String)] = []
        var ok = false
        do {
            let flags = UInt32(CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY)
            guard let out = BIO_new(BIO_s_mem()) else { return CMSVerification(status: .malformed("out of memory")) }
            defer { BIO_free(out) }
            switch detached {
            case .memory(let detachedContent):
                ok = (try? OpenSSL.withMemoryBIO(detachedContent) { content in
                    Self.verifyDetached(cms, content: content, flags: flags)
                }) ?? false
            case .file(let content):
                let reader = FileRangeReader(content)
                guard let verified = reader.withBIO({ Self.verifyDetached(cms, content: $0, flags: flags) }) else {
                    return CMSVerification(status: .malformed("out of memory"))
                }
                if let error = reader.error {
                    _ = OpenSSL.drainErrors()
                    throw error
                }
                ok = verified
            case .none:
                ok = CMS_verify(cms, nil, nil, nil, out, flags) == 1
                if ok { extracted = OpenSSL.contents(ofMemoryBIO: out) }
            }
            if !ok { failure = Self.drainErrorCodes() }
        }
        let signers = collectSigners(infos, count: signerCount)
        guard ok else {
            return CMSVerification(status: Self.status(forVerifyErrors: failure), signers: signers)
        }

        // Step 2: every signer's certificate path at `time`.
        let crls = CMS_get1_crls(cms)
        defer { if let crls { smime_sk_X509_CRL_pop_free(crls) } }
        // One deadline for every certificate of every signer: the message waits no longer.
        let deadline = revocation.map { Date().addingTimeInterval($0.settings.timeout) }
        var revocationFound: ChainRevocation?
        for index in 0..<signerCount {
            guard let info = smime_sk_CMS_SignerInfo_value(infos, Int32(index)) else { continue }
            var signerCert: OpaquePointer?
            CMS_SignerInfo_get0_algs(info, nil, &signerCert, nil, nil)
            guard let signerCert else { return CMSVerification(status: .signerCertificateMissing, signers: signers) }
            var chain: ChainRevocation?
            if let rejected = validatePath(signerCert, untrusted: certs, crls: crls, at: time, deadline: deadline,
                                           revocation: &chain) {
                var out = CMSVerification(status: rejected, signers: signers)
                out.revocation = chain
                return out
            }
            if let chain {
                revocationFound = revocationFound.map { ChainRevocation(certificates: $0.certificates + chain.certificates) } ?? chain
            }
        }
        var detachedContent: [UInt8]?
        if case .memory(let content) = detached { detachedContent = content }
        var verified = CMSVerification(status: .verified, signers: signers, content: extracted ?? detachedContent)
        verified.revocation = revocationFound
        return verified
    }

    /// `CMS_verify` over detached content, with the content BIO behind a null filter.
    ///
    /// OpenSSL 3.0 (seen in 3.0.19; fixed upstream in 2026, openssl/openssl#30535) copies a memory
    /// BIO into a new read-only one and leaks that copy (272 bytes) when `CMS_dataInit` then fails,
    /// e.g. for an unknown or empty digestAlgorithms set: with `CMS_BINARY` its error path frees
    /// only the digest chain. A BIO that is not of type `BIO_TYPE_MEM` is used as given and never
    /// copied, so nothing is allocated that could leak; ours is read-only already, so the copy
    /// would not have made anything faster.
    static func verifyDetached(_ cms: OpaquePointer, content: OpaquePointer, flags: UInt32) -> Bool {
        guard let filter = BIO_new(BIO_f_null()) else { return false }
        // CMS_verify frees what it pushed onto the filter, never the filter or what is below it.
        defer { BIO_free(filter) }
        BIO_push(filter, content)
        defer { BIO_pop(filter) }
        return CMS_verify(cms, nil, nil, filter, nil, flags) == 1
    }

    /// The kind of a DER ContentInfo, or nil when it does not parse.
    public static func kind(ofDER der: [UInt8]) -> CMSContentKind? {
        guard !der.isEmpty else { return nil }
        let parsed = CMSParser.decode(der)
        _ = OpenSSL.drainErrors()
        guard let parsed else { return nil }
        defer { CMS_ContentInfo_free(parsed) }
        return kind(of: parsed)
    }

    /// The certificates a DER SignedData carries, as PEM (for pinning a partner's certificates
    /// and for tests); empty when it does not parse.
    static func embeddedCertificatesPEM(_ der: [UInt8]) -> [UInt8] {
        let parsed = CMSParser.decode(der)
        defer { _ = OpenSSL.drainErrors() }
        guard let parsed else { return [] }
        defer { CMS_ContentInfo_free(parsed) }
        guard let certs = CMS_get1_certs(parsed), let bio = BIO_new(BIO_s_mem()) else { return [] }
        defer { smime_sk_X509_pop_free(certs); BIO_free(bio) }
        for index in 0..<smime_sk_X509_num(certs) {
            PEM_write_bio_X509(bio, smime_sk_X509_value(certs, index))
        }
        return OpenSSL.contents(ofMemoryBIO: bio)
    }

    static func kind(of cms: OpaquePointer) -> CMSContentKind {
        switch OBJ_obj2nid(CMS_get0_type(cms)) {
        case NID_pkcs7_signed: return .signedData
        case NID_pkcs7_enveloped: return .envelopedData
        case NID_id_smime_ct_authEnvelopedData: return .authEnvelopedData
        case NID_id_smime_ct_compressedData: return .compressedData
        default: return .other
        }
    }

    // MARK: path validation

    /// Nil when the chain is good, else the rejection.
    private func validatePath(_ cert: OpaquePointer, untrusted: OpaquePointer?, crls: OpaquePointer?,
                              at time: Date, deadline: Date? = nil,
                              revocation found: inout ChainRevocation?) -> CMSVerification.Status? {
        guard let ctx = X509_STORE_CTX_new() else { return .malformed("out of memory") }
        defer { X509_STORE_CTX_free(ctx) }
        guard X509_STORE_CTX_init(ctx, trust.store, cert, untrusted) == 1,
              X509_STORE_CTX_set_default(ctx, "smime_sign") == 1,
              let param = X509_STORE_CTX_get0_param(ctx)
        else {
            return .malformed("cannot set up certificate validation: " + OpenSSL.drainErrors().joined(separator: "; "))
        }
        X509_VERIFY_PARAM_set_time(param, time_t(time.timeIntervalSince1970.rounded(.down)))
        X509_VERIFY_PARAM_set_depth(param, Int32(maxChainDepth))
        if trust.hasCRL(forIssuer: X509_get_issuer_name(cert)) {
            X509_VERIFY_PARAM_set_flags(param, UInt(X509_V_FLAG_CRL_CHECK))
        }
        if let crls { X509_STORE_CTX_set0_crls(ctx, crls) }
        if X509_verify_cert(ctx) == 1 {
            _ = OpenSSL.drainErrors()
            guard let revocation, let built = X509_STORE_CTX_get0_chain(ctx) else { return nil }
            var chain: [OpaquePointer] = []
            for index in 0..<max(0, smime_sk_X509_num(built)) {
                if let member = smime_sk_X509_value(built, index) { chain.append(member) }
            }
            let checked = revocation.check(chain: chain, deadline: deadline)
            found = checked
            if let revoked = checked.revoked, let reason = checked.revokedReason {
                return .certificateRejected(code: Int(X509_V_ERR_CERT_REVOKED), depth: revoked.depth, reason: reason)
            }
            return nil
        }
        let code = X509_STORE_CTX_get_error(ctx)
        let depth = Int(X509_STORE_CTX_get_error_depth(ctx))
        _ = OpenSSL.drainErrors()
        return .certificateRejected(code: Int(code), depth: depth, reason: Self.words(forVerifyError: code, depth: depth))
    }

    /// The X509 verify error in plain words, naming which certificate it is about.
    static func words(forVerifyError code: Int32, depth: Int) -> String {
        let which = depth == 0 ? "the signer's certificate" : "a CA certificate in the chain (depth \(depth))"
        let openSSL = X509_verify_cert_error_string(Int(code)).map { String(cString: $0) } ?? "error \(code)"
        switch code {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return "\(which) has expired"
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return "\(which) is not yet valid"
        case X509_V_ERR_CERT_REVOKED:
            return "\(which) is revoked"
        case X509_V_ERR_INVALID_PURPOSE:
            return "\(which) may not be used for e-mail signatures (key usage or extended key usage)"
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
             X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
             X509_V_ERR_CERT_UNTRUSTED:
            return "untrusted: the signer's certificate does not chain to a trusted root (\(openSSL))"
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
            return "\(which) has an invalid signature (\(openSSL))"
        case X509_V_ERR_UNABLE_TO_GET_CRL:
            return "no valid CRL for \(which)"
        case X509_V_ERR_CRL_HAS_EXPIRED, X509_V_ERR_CRL_NOT_YET_VALID:
            return "the CRL for \(which) is out of date (\(openSSL))"
        case X509_V_ERR_CERT_CHAIN_TOO_LONG:
            return "the certificate chain is too long"
        default:
            return "\(which) was refused: \(openSSL)"
        }
    }

    // MARK: signer facts

    private func collectSigners(_ infos: OpaquePointer, count: Int) -> [CMSVerification.Signer] {
        var out: [CMSVerification.Signer] = []
        for index in 0..<count {
            guard let info = smime_sk_CMS_SignerInfo_value(infos, Int32(index)) else { continue }
            var key: OpaquePointer?
            var cert: OpaquePointer?
            var digest: UnsafeMutablePointer<X509_ALGOR>?
            var signature: UnsafeMutablePointer<X509_ALGOR>?
            CMS_SignerInfo_get0_algs(info, &key, &cert, &digest, &signature)
            var signer = CMSVerification.Signer()
            if let cert {
                signer.certificate = CMSParser.cache.entry(for: cert)?.certificateInfo ?? (try? CertificateInfo(x509: cert))
            }
            signer.signingTime = Self.signingTime(info)
            let digestNID = Self.nid(of: digest)
            let signatureNID = Self.nid(of: signature)
            signer.digestAlgorithm = Self.shortName(digestNID)?.lowercased()
            signer.signatureAlgorithm = Self.shortName(signatureNID)
            signer.weakness = Self.weakness(digestNID: digestNID, signatureNID: signatureNID,
                                            key: cert.flatMap { X509_get0_pubkey($0) })
            out.append(signer)
        }
        _ = OpenSSL.drainErrors()
        return out
    }

    private static func nid(of algorithm: UnsafeMutablePointer<X509_ALGOR>?) -> Int32 {
        guard let algorithm else { return NID_undef }
        var object: OpaquePointer?
        X509_ALGOR_get0(&object, nil, nil, algorithm)
        return object.map { OBJ_obj2nid($0) } ?? NID_undef
    }

    private static func shortName(_ nid: Int32) -> String? {
        guard nid != NID_undef, let name = OBJ_nid2sn(nid) else { return nil }
        return String(cString: name)
    }

    /// MD5/SHA-1 (as digest or inside a combined signature algorithm) and RSA/DSA keys under
    /// 2048 bits are weak (RFC 8551 §2.1, §4.1, App. B).
    static func weakness(digestNID: Int32, signatureNID: Int32, key: OpaquePointer?) -> String? {
        let weakDigests: [Int32: String] = [NID_md5: "MD5", NID_md2: "MD2", NID_md4: "MD4", NID_sha1: "SHA-1"]
        var problems: [String] = []
        if let name = weakDigests[digestNID] { problems.append("\(name) digest") }
        var signatureDigest: Int32 = NID_undef
        var publicKeyNID: Int32 = NID_undef
        if OBJ_find_sigid_algs(signatureNID, &signatureDigest, &publicKeyNID) == 1,
           let name = weakDigests[signatureDigest], weakDigests[digestNID] != name {
            problems.append("\(name) signature")
        }
        if let key {
            let id = EVP_PKEY_get_base_id(key)
            let bits = EVP_PKEY_get_bits(key)
            if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS || id == EVP_PKEY_DSA) && bits < 2048 {
                problems.append("\(CertificateInfo.keyDescription(key)) key")
            }
        }
        _ = OpenSSL.drainErrors()
        return problems.isEmpty ? nil : problems.joined(separator: ", ")
    }

    private static func signingTime(_ info: OpaquePointer) -> Date? {
        let index = CMS_signed_get_attr_by_NID(info, NID_pkcs9_signingTime, -1)
        guard index >= 0, let attribute = CMS_signed_get_attr(info, index),
              let value = X509_ATTRIBUTE_get0_type(attribute, 0)
        else { return nil }
        switch value.pointee.type {
        case V_ASN1_UTCTIME: return OpenSSL.date(value.pointee.value.utctime)
        case V_ASN1_GENERALIZEDTIME: return OpenSSL.date(value.pointee.value.generalizedtime)
        default: return nil
        }
    }

    // MARK: errors

    /// Empties this thread's error queue, returning the reason codes and texts (bounded).
    static func drainErrorCodes() -> [(reason: Int32, text: String)] {
        var out: [(Int32, String)] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            if out.count < 16 {
                var buffer = [CChar](repeating: 0, count: 256)
                ERR_error_string_n(code, &buffer, buffer.count)
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let reason = smime_ERR_GET_LIB(code) == ERR_LIB_CMS ? Int32(smime_ERR_GET_REASON(code)) : -1
                out.append((reason, text))
            }
        }
        return out
    }

    /// Which step of `CMS_verify` failed, from its error reasons.
    static func status(forVerifyErrors errors: [(reason: Int32, text: String)]) -> CMSVerification.Status {
        let reasons = Set(errors.map(\.reason))
        if reasons.contains(CMS_R_NO_SIGNERS) { return .noSigners }
        if reasons.contains(CMS_R_SIGNER_CERTIFICATE_NOT_FOUND) { return .signerCertificateMissing }
        if reasons.contains(CMS_R_CONTENT_VERIFY_ERROR) { return .contentAltered }
        if reasons.contains(CMS_R_NO_CONTENT) { return .malformed("a detached signature without its content") }
        if reasons.contains(CMS_R_VERIFICATION_FAILURE) { return .badSignature }
        let detail = errors.map { Self.reasonText($0.text) }.filter { !$0.isEmpty }
        return .malformed("the signature cannot be checked"
                          + (detail.isEmpty ? "" : " (" + detail.prefix(3).joined(separator: "; ") + ")"))
    }

    /// The reason part of an OpenSSL error string ("error:...:lib::reason" → "reason").
    private static func reasonText(_ text: String) -> String {
        text.split(separator: ":", omittingEmptySubsequences: false).last.map(String.init) ?? text
    }
}
