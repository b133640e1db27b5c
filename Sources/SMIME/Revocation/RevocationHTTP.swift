// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// Fetches OCSP responses and CRLs over plain HTTP with OpenSSL's own client (`OSSL_HTTP_get`,
/// `OSSL_HTTP_transfer`), through `proxy` when one is set. Blocking, bounded by `timeout`
/// (whole seconds, at least one: OpenSSL's granularity) and by `maximumBytes`.
///
/// The environment's `http_proxy` is never used: a daemon's network path is its configuration's
/// (`HTTPProxy`), so an empty proxy string is passed when none is configured.
public struct RevocationHTTP: Sendable {
    /// `host:port` or `http://host:port` of the proxy, or nil for direct connections.
    public var proxy: String?
    /// Seconds for connecting, sending and receiving together.
    public var timeout: Int
    /// The largest response accepted (a CRL of a big CA can be several megabytes).
    public var maximumBytes: Int

    public init(proxy: String? = nil, timeout: Int = 5, maximumBytes: Int = 32 << 20) {
        self.proxy = proxy
        self.timeout = max(1, timeout)
        self.maximumBytes = maximumBytes
    }

    /// A failed transfer, in plain words with OpenSSL's reason.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Only `http://` is fetched: OCSP responses and CRLs are signed objects, and HTTPS would
    /// need a second trust configuration (RFC 5280 §4.2.1.13, RFC 6960 App. A use HTTP).
    static func checkScheme(_ url: String) throws(Failure) {
        guard url.lowercased().hasPrefix("http://") else {
            throw Failure(description: "\(url): only http:// URLs are fetched")
        }
    }

    /// GET `url` (a DER CRL, RFC 5280 §4.2.1.13; read whole, as ASN.1).
    public func get(_ url: String) throws(Failure) -> [UInt8] {
        try Self.checkScheme(url)
        ERR_clear_error()
        defer { ERR_clear_error() }
        let bio = OSSL_HTTP_get(url, proxy ?? "", nil, nil, nil, nil, nil, 0, nil, nil, 1,
                                maximumBytes, Int32(timeout))
        return try read(bio, url: url)
    }

    /// POST a DER OCSP request to `url`.
    public func postOCSP(_ url: String, request: [UInt8]) throws(Failure) -> [UInt8] {
        try Self.checkScheme(url)
        ERR_clear_error()
        defer { ERR_clear_error() }
        var host: UnsafeMutablePointer<CChar>?
        var port: UnsafeMutablePointer<CChar>?
        var path: UnsafeMutablePointer<CChar>?
        var ssl: Int32 = 0
        guard OSSL_HTTP_parse_url(url, &ssl, nil, &host, &port, nil, &path, nil, nil) == 1, let host, let port, let path else {
            throw Failure(description: "\(url): not a valid URL")
        }
        defer { smime_OPENSSL_free(host); smime_OPENSSL_free(port); smime_OPENSSL_free(path) }
        let body: OpaquePointer?
        do {
            body = try OpenSSL.withMemoryBIO(request) { requestBIO in
                OSSL_HTTP_transfer(nil, host, port, path, 0, proxy ?? "", nil, nil, nil, nil, nil, 0, nil,
                                   "application/ocsp-request", requestBIO, "application/ocsp-response", 1,
                                   maximumBytes, Int32(timeout), 0)
            }
        } catch {
            throw Failure(description: "\(url): out of memory")
        }
        return try read(body, url: url)
    }

    private func read(_ bio: OpaquePointer?, url: String) throws(Failure) -> [UInt8] {
        guard let bio else {
            let why = OpenSSL.drainErrors().last.map { $0.split(separator: ":").last.map(String.init) ?? $0 } ?? "no response"
            throw Failure(description: "\(url): \(why)")
        }
        defer { BIO_free_all(bio) }
        guard let memory = smime_bio_slurp(bio, maximumBytes) else {
            throw Failure(description: "\(url): the response is larger than \(maximumBytes) bytes")
        }
        defer { BIO_free(memory) }
        let bytes = OpenSSL.contents(ofMemoryBIO: memory)
        guard !bytes.isEmpty else { throw Failure(description: "\(url): empty response") }
        return bytes
    }
}
