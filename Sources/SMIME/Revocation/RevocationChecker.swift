// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// The settings of revocation checking (`RevocationCheck`, `RevocationTimeout`, `HTTPProxy`,
/// `RevocationCacheDir`).
public struct RevocationSettings: Sendable, Equatable {
    /// The methods, in the order tried; empty for none.
    public var methods: [RevocationMethod]
    /// The longest a message waits for revocation answers (all certificates together), and
    /// the timeout of each fetch.
    public var timeout: TimeInterval
    /// The HTTP proxy, `host:port` or `http://host:port`.
    public var proxy: String?
    /// Where fetched responses and CRLs are kept on disk.
    public var cacheDirectory: String?
    /// At most this many fetches at once.
    public var maximumConcurrentFetches: Int

    public init(methods: [RevocationMethod] = [], timeout: TimeInterval = 5, proxy: String? = nil,
                cacheDirectory: String? = nil, maximumConcurrentFetches: Int = 8) {
        self.methods = methods
        self.timeout = timeout
        self.proxy = proxy
        self.cacheDirectory = cacheDirectory
        self.maximumConcurrentFetches = maximumConcurrentFetches
    }
}

/// Finds out whether the certificates of a validated chain are revoked, by OCSP (the responder
/// named in each certificate's Authority Information Access) and by CRLs fetched from each
/// certificate's CRL distribution points; CRLs of the `TrustStore` (`CRLDir`) count as a
/// local source. OpenSSL does every check: `OCSP_basic_verify` (response signature, responder
/// authorised by the issuer, chain to the trust anchors), `OCSP_resp_find_status` and
/// `OCSP_check_validity` (thisUpdate/nextUpdate); CRLs through `X509_verify_cert` with
/// `X509_V_FLAG_CRL_CHECK` (CRL signature, issuer, validity).
///
/// Fetches go through a `SingleFlight` (one per URL and certificate however many messages wait,
/// a bounded number at once) and a `RevocationCache`; a check never waits past its deadline.
/// Safe to share between threads.
public final class RevocationChecker: Sendable {
    public let trust: TrustStore
    public let settings: RevocationSettings
    public let cache: RevocationCache
    let http: RevocationHTTP
    let flights: SingleFlight<Fetched>
    let events: RevocationEvents

    /// How long an OCSP response without nextUpdate is reused.
    static let defaultLifetime: TimeInterval = 300
    /// Clock skew allowed on thisUpdate/nextUpdate (OCSP_check_validity).
    static let leeway = 300

    enum Fetched: Sendable {
        case bytes([UInt8])
        case failed(String)
    }

    public init(trust: TrustStore, settings: RevocationSettings, cache: RevocationCache? = nil,
                events: RevocationEvents = RevocationEvents()) {
        self.trust = trust
        self.settings = settings
        self.cache = cache ?? RevocationCache(directory: settings.cacheDirectory)
        self.http = RevocationHTTP(proxy: settings.proxy, timeout: Int(settings.timeout.rounded(.up)))
        self.flights = SingleFlight(maximumConcurrent: settings.maximumConcurrentFetches)
        self.events = events
    }

    /// The same checker with another trust store (for checking our own identities against
    /// their own issuers), sharing cache, fetches and events.
    init(sharing other: RevocationChecker, trust: TrustStore) {
        self.trust = trust
        self.settings = other.settings
        self.cache = other.cache
        self.http = other.http
        self.flights = other.flights
        self.events = other.events
    }

    /// How many fetches were started (single-flight shows as one per URL).
    public var fetchesStarted: Int { flights.fetchesStarted }

    /// Checks every certificate of `chain` (`X509*`, end-entity first, each followed by its
    /// issuer; a self-signed last one is the trust anchor and is not checked). Waits until
    /// `deadline` at most (default: now + the timeout).
    public func check(chain: [OpaquePointer], deadline: Date? = nil) -> ChainRevocation {
        let deadline = deadline ?? Date().addingTimeInterval(settings.timeout)
        ERR_clear_error()
        defer { ERR_clear_error() }
        guard let untrusted = smime_sk_X509_new_null() else { return ChainRevocation(certificates: []) }
        defer { smime_sk_X509_free(untrusted) }
        for cert in chain { _ = smime_sk_X509_push(untrusted, cert) }
        var out: [CertificateRevocation] = []
        for (depth, cert) in chain.enumerated() {
            guard depth + 1 < chain.count else { break }   // the anchor, or an issuer not at hand
            let issuer = chain[depth + 1]
            let (status, source) = status(of: cert, issuer: issuer, untrusted: untrusted, deadline: deadline)
            let kind = source.hasPrefix("cache") ? "cache" : source == "CRLDir" ? "crldir"
                : String(source.prefix { $0 != " " })
            events.checked(kind, status.keyword)
            out.append(CertificateRevocation(subject: OpenSSL.oneLine(X509_get_subject_name(cert)), depth: depth,
                                             status: status, source: source))
        }
        return ChainRevocation(certificates: out)
    }

    // MARK: one certificate

    private func status(of cert: OpaquePointer, issuer: OpaquePointer, untrusted: OpaquePointer,
                        deadline: Date) -> (RevocationStatus, String) {
        // A CRL loaded from CRLDir for this issuer is the local, pre-loaded source.
        if trust.hasCRL(forIssuer: X509_get_issuer_name(cert)) {
            let local = crlVerdict(cert, untrusted: untrusted, fetched: nil)
            if local.status != .unknown("") { return (local.status, "CRLDir") }
        }
        var lastUnknown: (RevocationStatus, String)?
        for method in settings.methods {
            let urls = method == .ocsp ? Self.urls(cert, smime_ocsp_urls) : Self.urls(cert, smime_crl_urls)
            for url in urls.prefix(4) {
                let found = method == .ocsp
                    ? ocsp(url: url, cert: cert, issuer: issuer, untrusted: untrusted, deadline: deadline)
                    : crl(url: url, cert: cert, untrusted: untrusted, deadline: deadline)
                if case .unknown = found.0 { lastUnknown = found; continue }
                return found
            }
        }
        return lastUnknown ?? (.unchecked, "none")
    }

    static func urls(_ cert: OpaquePointer, _ reader: (OpaquePointer?, OpaquePointer?) -> Int32) -> [String] {
        guard let bio = BIO_new(BIO_s_mem()) else { return [] }
        defer { BIO_free(bio) }
        guard reader(cert, bio) > 0 else { return [] }
        return String(decoding: OpenSSL.contents(ofMemoryBIO: bio), as: UTF8.self)
            .split(separator: "\n").map(String.init).filter { $0.lowercased().hasPrefix("http://") }
    }

    /// Runs a fetch through the single-flight, recording its latency; nil when the deadline passed.
    private func fetch(kind: String, key: String, deadline: Date, work: @escaping @Sendable () -> Fetched,
                       store: @escaping @Sendable (Fetched) -> Void) -> Fetched? {
        let events = self.events
        let started = Date()
        let outcome = flights.value(for: key, deadline: deadline, work: work) { fetched in
            if case .bytes = fetched { events.fetched(kind, Date().timeIntervalSince(started), true) }
            else { events.fetched(kind, Date().timeIntervalSince(started), false) }
            store(fetched)
        }
        switch outcome {
        case .value(let fetched): return fetched
        case .timedOut: return nil
        case .overloaded: return .failed("too many revocation fetches waiting")
        }
    }

    // MARK: OCSP

    private func ocsp(url: String, cert: OpaquePointer, issuer: OpaquePointer, untrusted: OpaquePointer,
                      deadline: Date) -> (RevocationStatus, String) {
        let source = "ocsp \(url)"
        guard let id = OCSP_cert_to_id(nil, cert, issuer) else { return (.unknown("cannot make the OCSP request"), source) }
        defer { OCSP_CERTID_free(id) }
        let key = "ocsp|\(url)|" + Self.der(id, i2d_OCSP_CERTID).map { String(format: "%02x", $0) }.joined()
        if let cached = cache.lookup(key) {
            let verdict = ocspVerdict(cached.der, id: id, untrusted: untrusted)
            if case .unknown = verdict.status { cache.remove(key) } else {
                events.cacheHit("ocsp")
                return (verdict.status, "cache: \(source)")
            }
        }
        if let failure = cache.recentFailure(key) { return (.unknown(failure), source) }
        guard let request = Self.ocspRequest(id) else { return (.unknown("cannot make the OCSP request"), source) }
        let http = self.http
        let cache = self.cache
        let fetched: Fetched? = fetch(kind: "ocsp", key: key, deadline: deadline, work: {
            do { return .bytes(try http.postOCSP(url, request: request)) } catch { return .failed("\(error)") }
        }, store: { fetched in
            switch fetched {
            case .bytes(let der): cache.store(key, der: der, expires: Self.ocspExpiry(der))
            case .failed(let why): cache.storeFailure(key, reason: why)
            }
        })
        switch fetched {
        case nil: return (.unknown("no answer within \(Self.seconds(settings.timeout))"), source)
        case .failed(let why)?: return (.unknown(why), source)
        case .bytes(let der)?:
            let verdict = ocspVerdict(der, id: id, untrusted: untrusted)
            if case .unknown(let why) = verdict.status {
                // A response we refuse is not reused; the failure is remembered instead.
                cache.remove(key)
                cache.storeFailure(key, reason: why)
            }
            return (verdict.status, source)
        }
    }

    static func ocspRequest(_ id: OpaquePointer) -> [UInt8]? {
        guard let request = OCSP_REQUEST_new() else { return nil }
        defer { OCSP_REQUEST_free(request) }
        guard let copy = OCSP_CERTID_dup(id) else { return nil }
        guard OCSP_request_add0_id(request, copy) != nil else { OCSP_CERTID_free(copy); return nil }
        let der = der(request, i2d_OCSP_REQUEST)
        return der.isEmpty ? nil : der
    }

    /// The earliest nextUpdate of a response (unverified: only for how long to keep it; every
    /// use verifies it again), or a short default.
    static func ocspExpiry(_ der: [UInt8], now: Date = Date()) -> Date {
        let fallback = now.addingTimeInterval(defaultLifetime)
        guard let response = parse(der, d2i_OCSP_RESPONSE) else { return now }
        defer { OCSP_RESPONSE_free(response) }
        guard let basic = OCSP_response_get1_basic(response) else { return now }
        defer { OCSP_BASICRESP_free(basic) }
        var earliest: Date?
        for index in 0..<max(0, OCSP_resp_count(basic)) {
            guard let single = OCSP_resp_get0(basic, index) else { continue }
            var next: UnsafeMutablePointer<ASN1_GENERALIZEDTIME>?
            OCSP_single_get0_status(single, nil, nil, nil, &next)
            if let date = OpenSSL.date(next) { earliest = min(earliest ?? date, date) }
        }
        _ = OpenSSL.drainErrors()
        guard let earliest else { return fallback }
        return earliest > now ? earliest : now
    }

    /// What a DER OCSP response says about `id`, verified against the trust store.
    func ocspVerdict(_ der: [UInt8], id: OpaquePointer, untrusted: OpaquePointer) -> (status: RevocationStatus, Void) {
        defer { _ = OpenSSL.drainErrors() }
        guard let response = Self.parse(der, d2i_OCSP_RESPONSE) else { return (.unknown("not an OCSP response"), ()) }
        defer { OCSP_RESPONSE_free(response) }
        let code = OCSP_response_status(response)
        guard code == OCSP_RESPONSE_STATUS_SUCCESSFUL else {
            return (.unknown("the responder answered \(String(cString: OCSP_response_status_str(Int(code))))"), ())
        }
        guard let basic = OCSP_response_get1_basic(response) else { return (.unknown("no basic OCSP response"), ()) }
        defer { OCSP_BASICRESP_free(basic) }
        ERR_clear_error()
        guard OCSP_basic_verify(basic, untrusted, trust.store, 0) == 1 else {
            let why = OpenSSL.drainErrors().last.map { $0.split(separator: ":").last.map(String.init) ?? $0 } ?? "verification failed"
            return (.unknown("OCSP response refused: \(why)"), ())
        }
        var status: Int32 = -1
        var reason: Int32 = -1
        var revoked: UnsafeMutablePointer<ASN1_GENERALIZEDTIME>?
        var thisUpdate: UnsafeMutablePointer<ASN1_GENERALIZEDTIME>?
        var nextUpdate: UnsafeMutablePointer<ASN1_GENERALIZEDTIME>?
        guard OCSP_resp_find_status(basic, id, &status, &reason, &revoked, &thisUpdate, &nextUpdate) == 1 else {
            return (.unknown("the OCSP response has no status for the certificate"), ())
        }
        guard OCSP_check_validity(thisUpdate, nextUpdate, Self.leeway, -1) == 1 else {
            return (.unknown("the OCSP response is out of date (thisUpdate/nextUpdate)"), ())
        }
        switch status {
        case V_OCSP_CERTSTATUS_GOOD: return (.good, ())
        case V_OCSP_CERTSTATUS_REVOKED:
            let name = reason >= 0 ? OCSP_crl_reason_str(Int(reason)).map { String(cString: $0) } : nil
            return (.revoked(reason: name, date: OpenSSL.date(revoked)), ())
        default: return (.unknown("the OCSP responder does not know the certificate"), ())
        }
    }

    // MARK: CRL

    private func crl(url: String, cert: OpaquePointer, untrusted: OpaquePointer, deadline: Date) -> (RevocationStatus, String) {
        let source = "crl \(url)"
        let key = "crl|\(url)"
        if let cached = cache.lookup(key) {
            if let crl = Self.parseCRL(cached.der) {
                defer { X509_CRL_free(crl) }
                let verdict = crlVerdict(cert, untrusted: untrusted, fetched: crl)
                if case .unknown = verdict.status { cache.remove(key) } else {
                    events.cacheHit("crl")
                    return (verdict.status, "cache: \(source)")
                }
            } else {
                cache.remove(key)
            }
        }
        if let failure = cache.recentFailure(key) { return (.unknown(failure), source) }
        let http = self.http
        let cache = self.cache
        let fetched: Fetched? = fetch(kind: "crl", key: key, deadline: deadline, work: {
            do { return .bytes(try http.get(url)) } catch { return .failed("\(error)") }
        }, store: { fetched in
            switch fetched {
            case .bytes(let der):
                guard let crl = Self.parseCRL(der) else { cache.storeFailure(key, reason: "not a CRL"); return }
                defer { X509_CRL_free(crl) }
                let now = Date()
                let next = OpenSSL.date(X509_CRL_get0_nextUpdate(crl))
                // A stale CRL is kept briefly (as a failure would be), so it is not fetched for every message.
                let expires = next.map { $0 > now ? $0 : now.addingTimeInterval(cache.failureSeconds) }
                    ?? now.addingTimeInterval(Self.defaultLifetime)
                cache.store(key, der: der, expires: expires, onDisk: next.map { $0 > now } ?? false)
            case .failed(let why): cache.storeFailure(key, reason: why)
            }
        })
        switch fetched {
        case nil: return (.unknown("no answer within \(Self.seconds(settings.timeout))"), source)
        case .failed(let why)?: return (.unknown(why), source)
        case .bytes(let der)?:
            guard let crl = Self.parseCRL(der) else { return (.unknown("the response is not a CRL"), source) }
            defer { X509_CRL_free(crl) }
            return (crlVerdict(cert, untrusted: untrusted, fetched: crl).status, source)
        }
    }

    /// What OpenSSL's path validation with CRL checking of `cert` (depth 0) says, with the
    /// trust store's CRLs and `fetched`. `.unknown("")` means no CRL applied at all.
    func crlVerdict(_ cert: OpaquePointer, untrusted: OpaquePointer, fetched: OpaquePointer?) -> (status: RevocationStatus, Void) {
        defer { _ = OpenSSL.drainErrors() }
        guard let ctx = X509_STORE_CTX_new() else { return (.unknown("out of memory"), ()) }
        defer { X509_STORE_CTX_free(ctx) }
        guard X509_STORE_CTX_init(ctx, trust.store, cert, untrusted) == 1, let param = X509_STORE_CTX_get0_param(ctx) else {
            return (.unknown("cannot set up CRL checking"), ())
        }
        X509_VERIFY_PARAM_set_flags(param, UInt(X509_V_FLAG_CRL_CHECK))
        var crls: OpaquePointer?
        if let fetched, let stack = smime_sk_X509_CRL_new_null() {
            _ = smime_sk_X509_CRL_push(stack, fetched)
            crls = stack
            X509_STORE_CTX_set0_crls(ctx, stack)
        }
        // The stack holds a borrowed CRL: free the stack alone after the context is done.
        defer { if let crls { smime_sk_X509_CRL_free_stack(crls) } }
        if X509_verify_cert(ctx) == 1 { return (.good, ()) }
        let code = X509_STORE_CTX_get_error(ctx)
        let text = X509_verify_cert_error_string(Int(code)).map { String(cString: $0) } ?? "error \(code)"
        switch code {
        case X509_V_ERR_CERT_REVOKED:
            return (Self.revokedEntry(cert, fetched: fetched, store: ctx), ())
        case X509_V_ERR_UNABLE_TO_GET_CRL:
            return (.unknown(fetched == nil ? "" : "the CRL does not cover the certificate (\(text))"), ())
        case X509_V_ERR_CRL_HAS_EXPIRED:
            return (.unknown("stale CRL: its nextUpdate has passed"), ())
        default:
            return (.unknown("CRL check failed: \(text)"), ())
        }
    }

    /// The revoked entry's reason and date, from the CRL that listed it.
    static func revokedEntry(_ cert: OpaquePointer, fetched: OpaquePointer?, store ctx: OpaquePointer) -> RevocationStatus {
        var crl = fetched
        if crl == nil { crl = X509_STORE_CTX_get0_current_crl(ctx) }
        var entry: OpaquePointer?
        guard let crl, X509_CRL_get0_by_cert(crl, &entry, cert) == 1, let entry else {
            return .revoked(reason: nil, date: nil)
        }
        let code = smime_revoked_reason(entry)
        let reason = code >= 0 ? OCSP_crl_reason_str(Int(code)).map { String(cString: $0) } : nil
        return .revoked(reason: reason, date: OpenSSL.date(X509_REVOKED_get0_revocationDate(entry)))
    }

    static func parseCRL(_ bytes: [UInt8]) -> OpaquePointer? {
        if let crl = TrustStore.derCRL(bytes) { return crl }
        let pem: OpaquePointer? = try? OpenSSL.withMemoryBIO(bytes) { PEM_read_bio_X509_CRL($0, nil, nil, nil) }
        _ = OpenSSL.drainErrors()
        return pem
    }

    // MARK: helpers

    static func seconds(_ interval: TimeInterval) -> String {
        interval == interval.rounded() ? "\(Int(interval)) s" : String(format: "%.1f s", interval)
    }

    static func parse(_ bytes: [UInt8], _ d2i: (UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, Int) -> OpaquePointer?) -> OpaquePointer? {
        bytes.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i(nil, &cursor, buffer.count)
        }
    }

    static func der(_ object: OpaquePointer, _ i2d: (OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) -> Int32) -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        let length = i2d(object, &out)
        guard length > 0, let out else { return [] }
        defer { smime_OPENSSL_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }
}
