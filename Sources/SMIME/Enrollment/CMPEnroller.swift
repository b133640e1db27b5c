// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// Enrolment over CMP (RFC 4210, lightweight profile RFC 9483) with OpenSSL 3's own client
/// (`OSSL_CMP_*`): an initial registration (ir, or cr when a client certificate authenticates
/// us) carrying the request's subject, key and extensions as its template, proof of possession
/// signed with the new key; a revocation request (rr) to revoke. Messages are protected by the
/// shared secret (PBMAC, with its reference value) or signed with the client certificate.
public struct CMPEnroller: Enroller {
    /// How to reach and authenticate to the CA.
    public struct Settings: Sendable, Equatable {
        /// The CA's host name or address.
        public var host: String
        /// The CA's port.
        public var port: Int
        /// The HTTP path of the CMP endpoint (e.g. `pkix/` or `.well-known/cmp`).
        public var path: String
        /// The reference value (sender KID) that names the shared secret at the CA.
        public var reference: String?
        /// The shared secret (never logged).
        public var secret: [UInt8]?
        /// A client certificate and its key (PEM files) for signature-protected messages.
        public var clientCertificate: String?
        public var clientKey: String?
        /// CA certificates trusted for the CA's own signature on its answers (PEM file).
        public var trustAnchors: String?
        /// The longest one exchange and the whole transaction may take.
        public var timeout: TimeInterval

        /// Makes settings.
        public init(host: String, port: Int, path: String, reference: String? = nil, secret: [UInt8]? = nil,
                    clientCertificate: String? = nil, clientKey: String? = nil, trustAnchors: String? = nil,
                    timeout: TimeInterval = 60) {
            self.host = host; self.port = port; self.path = path; self.reference = reference; self.secret = secret
            self.clientCertificate = clientCertificate; self.clientKey = clientKey
            self.trustAnchors = trustAnchors; self.timeout = timeout
        }
    }

    /// The settings in use.
    public let settings: Settings

    /// Makes a CMP enroller.
    public init(settings: Settings) { self.settings = settings }

    public var description: String { "cmp \(settings.host):\(settings.port)/\(settings.path)" }

    public func enrol(request: CertificateRequest, key: NewKey) throws -> [UInt8] {
        let ctx = try context()
        defer { OSSL_CMP_CTX_free(ctx) }
        // The PKCS#10 request is the template of the ir/cr: its subject, key and extensions.
        guard OSSL_CMP_CTX_set1_p10CSR(ctx, request.request) == 1, EVP_PKEY_up_ref(key.pkey) == 1 else {
            throw EnrolmentError("cannot set up the CMP request\(Self.errors())", temporary: false)
        }
        guard OSSL_CMP_CTX_set0_newPkey(ctx, 1, key.pkey) == 1 else {
            EVP_PKEY_free(key.pkey)
            throw EnrolmentError("cannot set up the CMP request\(Self.errors())", temporary: false)
        }
        let cert = settings.clientCertificate == nil ? smime_cmp_exec_IR(ctx) : smime_cmp_exec_CR(ctx)
        guard let cert else { throw failure(ctx, doing: "enrolment") }
        var pem = try IssuedCertificate.certificatePEM(cert)
        for stack in [OSSL_CMP_CTX_get1_extraCertsIn(ctx), OSSL_CMP_CTX_get1_caPubs(ctx)] {
            guard let stack else { continue }
            defer { smime_sk_X509_pop_free(stack) }
            for index in 0..<smime_sk_X509_num(stack) {
                if let extra = smime_sk_X509_value(stack, index) { pem += try IssuedCertificate.certificatePEM(extra) }
            }
        }
        return pem
    }

    public func revoke(certificatePEM: [UInt8], key: NewKey?, reason: RevocationReason) throws {
        let certs = try PEMReader.certificates(in: certificatePEM)
        defer { certs.forEach { X509_free($0) } }
        guard let cert = certs.first else { throw EnrolmentError("no certificate to revoke", temporary: false) }
        let ctx = try context()
        defer { OSSL_CMP_CTX_free(ctx) }
        guard OSSL_CMP_CTX_set1_oldCert(ctx, cert) == 1,
              OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_REVOCATION_REASON, reason.rawValue) == 1 else {
            throw EnrolmentError("cannot set up the CMP revocation request\(Self.errors())", temporary: false)
        }
        guard OSSL_CMP_exec_RR_ses(ctx) == 1 else { throw failure(ctx, doing: "revocation") }
    }

    /// A context with the server, its path, the timeouts and our credentials.
    private func context() throws -> OpaquePointer {
        guard let ctx = OSSL_CMP_CTX_new(nil, nil) else { throw EnrolmentError("out of memory", temporary: true) }
        var ok = false
        defer { if !ok { OSSL_CMP_CTX_free(ctx) } }
        _ = smime_cmp_ctx_quiet(ctx)
        let seconds = Int32(max(1, min(settings.timeout, 3600)))
        var good = OSSL_CMP_CTX_set1_server(ctx, settings.host) == 1
            && OSSL_CMP_CTX_set_serverPort(ctx, Int32(settings.port)) == 1
            && OSSL_CMP_CTX_set1_serverPath(ctx, settings.path) == 1
            && OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_MSG_TIMEOUT, seconds) == 1
            && OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_TOTAL_TIMEOUT, seconds) == 1
        if let reference = settings.reference {
            let bytes = Array(reference.utf8)
            good = good && OSSL_CMP_CTX_set1_referenceValue(ctx, bytes, Int32(bytes.count)) == 1
        }
        if let secret = settings.secret {
            good = good && secret.withUnsafeBufferPointer { OSSL_CMP_CTX_set1_secretValue(ctx, $0.baseAddress, Int32($0.count)) } == 1
        }
        guard good else { throw EnrolmentError("cannot set up the CMP client\(Self.errors())", temporary: false) }
        if let certFile = settings.clientCertificate, let keyFile = settings.clientKey {
            let certs = try PEMReader.certificates(in: Self.read(certFile))
            defer { certs.forEach { X509_free($0) } }
            guard let cert = certs.first,
                  let key = try PEMReader.privateKey(in: Self.read(keyFile), passphrase: nil) else {
                throw EnrolmentError("cannot read CMPClientCertificate/CMPClientKey\(Self.errors())", temporary: false)
            }
            defer { EVP_PKEY_free(key) }
            guard OSSL_CMP_CTX_set1_cert(ctx, cert) == 1, OSSL_CMP_CTX_set1_pkey(ctx, key) == 1 else {
                throw EnrolmentError("cannot use the CMP client certificate\(Self.errors())", temporary: false)
            }
        }
        if let anchors = settings.trustAnchors {
            guard let store = X509_STORE_new() else { throw EnrolmentError("out of memory", temporary: true) }
            guard X509_STORE_load_file(store, anchors) == 1, OSSL_CMP_CTX_set0_trustedStore(ctx, store) == 1 else {
                X509_STORE_free(store)
                throw EnrolmentError("cannot read CMPTrustAnchors \(anchors)\(Self.errors())", temporary: false)
            }
        }
        ok = true
        return ctx
    }

    /// The CA's status answer when there is one (a refusal), else the client's errors (cannot reach it).
    private func failure(_ ctx: OpaquePointer, doing what: String) -> EnrolmentError {
        let errors = Self.errors()
        var buffer = [CChar](repeating: 0, count: 1024)
        let status = OSSL_CMP_CTX_get_status(ctx)
        if OSSL_CMP_CTX_get0_newCert(ctx) != nil {
            // The CA issued a certificate and OpenSSL's client refused it (certConf with rejection).
            return EnrolmentError("CMP \(what) at \(settings.host):\(settings.port): the issued certificate was not accepted\(errors)",
                                  temporary: false)
        }
        if status >= 0, let text = OSSL_CMP_CTX_snprint_PKIStatus(ctx, &buffer, buffer.count) {
            return EnrolmentError("CMP \(what) refused by \(settings.host):\(settings.port): \(String(cString: text))\(errors)",
                                  temporary: status == 3 /* waiting */)
        }
        return EnrolmentError("CMP \(what) at \(settings.host):\(settings.port) failed\(errors)", temporary: true)
    }

    /// The error queue, with the detail text of CMP's own errors (why a certificate was not
    /// accepted, the server's status): CMP has no key material to echo, unlike the PEM readers
    /// whose details `OpenSSL.drainErrors` leaves out.
    private static func errors() -> String {
        var texts: [String] = []
        while true {
            var data: UnsafePointer<CChar>?
            var flags: Int32 = 0
            let code = ERR_get_error_all(nil, nil, nil, &data, &flags)
            if code == 0 { break }
            guard texts.count < 16 else { continue }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            var text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if smime_ERR_GET_LIB(code) == ERR_LIB_CMP, flags & ERR_TXT_STRING != 0, let data, data.pointee != 0 {
                text += " (\(String(String(cString: data).prefix(400))))"
            }
            texts.append(text)
        }
        return texts.isEmpty ? "" : ": " + texts.joined(separator: "; ")
    }

    private static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EnrolmentError("cannot read \(path)", temporary: false)
        }
        return [UInt8](data)
    }
}
