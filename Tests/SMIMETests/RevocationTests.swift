// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import SMIME

/// Revocation checks against real servers on loopback: `openssl ocsp` and an HTTP server with
/// CRLs (see `RevocationServers`).
@Suite("Revocation", .serialized)
struct RevocationTests {
    func checker(_ methods: [RevocationMethod], timeout: TimeInterval = 5, cacheDirectory: String? = nil,
                 events: RevocationEvents = RevocationEvents()) throws -> (RevocationChecker, RevocationServers) {
        let servers = try RevocationServers.get()
        let trust = try TrustStore(anchors: [servers.trustPEM])
        let settings = RevocationSettings(methods: methods, timeout: timeout, cacheDirectory: cacheDirectory)
        return (RevocationChecker(trust: trust, settings: settings, events: events), servers)
    }

    @Test func goodByOCSP() throws {
        let (checker, servers) = try checker([.ocsp])
        let result = checker.check(pem: try servers.chainPEM("good"))
        #expect(result.certificates.first?.status == .good)
        #expect(result.certificates.first?.source == "ocsp http://127.0.0.1:\(servers.ocspPort)")
        // The intermediate names no responder: with OCSP alone it is not checked.
        #expect(result.certificates.count == 2 && result.certificates[1].status == .unchecked)
        #expect(result.overall == .good)
    }

    @Test func revokedByOCSPWithReasonAndDate() throws {
        let (checker, servers) = try checker([.ocsp])
        let result = checker.check(pem: try servers.chainPEM("revoked"))
        guard case let .revoked(reason, date)? = result.certificates.first?.status else {
            Issue.record("not revoked: \(result)")
            return
        }
        #expect(reason == "keyCompromise")
        #expect(date.map { abs($0.timeIntervalSinceNow + 86_400) < 3_600 } == true)
        #expect(result.revokedReason?.hasPrefix("certificate revoked: keyCompromise, ") == true)
        #expect(result.revokedReason?.contains("ocsp http://127.0.0.1:\(servers.ocspPort)") == true)
    }

    @Test func unknownToTheResponder() throws {
        let (checker, servers) = try checker([.ocsp])
        let result = checker.check(pem: try servers.chainPEM("unknown"))
        #expect(result.certificates.first?.status == .unknown("the OCSP responder does not know the certificate"))
        #expect(result.unknownReason?.contains("unknown") == true)
    }

    @Test func revokedAndGoodByCRLWholeChain() throws {
        let (checker, servers) = try checker([.crl])
        let revoked = checker.check(pem: try servers.chainPEM("revoked"))
        guard case let .revoked(reason, _)? = revoked.certificates.first?.status else {
            Issue.record("not revoked: \(revoked)")
            return
        }
        #expect(reason == "keyCompromise")
        #expect(revoked.certificates.first?.source == "crl http://127.0.0.1:\(servers.crlPort)/inter.crl")
        let good = checker.check(pem: try servers.chainPEM("good"))
        // The intermediate is checked against the root's CRL from its own distribution point.
        #expect(good.certificates.map(\.status) == [.good, .good])
        #expect(good.certificates[1].source.hasSuffix("/root.crl"))
    }

    @Test func staleCRLIsUnknown() throws {
        let (checker, servers) = try checker([.crl])
        let result = checker.check(pem: try servers.chainPEM("stale"))
        #expect(result.certificates.first?.status == .unknown("stale CRL: its nextUpdate has passed"))
    }

    @Test func responseFromAnUnauthorisedKeyIsRefused() throws {
        let (checker, servers) = try checker([.ocsp])
        let result = checker.check(pem: try servers.chainPEM("rogue"))
        guard case let .unknown(why)? = result.certificates.first?.status else {
            Issue.record("accepted: \(result)")
            return
        }
        #expect(why.hasPrefix("OCSP response refused"))
    }

    @Test func ocspFallsBackToTheCRL() throws {
        let (checker, servers) = try checker([.ocsp, .crl])
        // Unknown to the responder, but the CRL does not list it.
        let result = checker.check(pem: try servers.chainPEM("unknown"))
        #expect(result.certificates.first?.status == .good)
        #expect(result.certificates.first?.source.hasPrefix("crl ") == true)
    }

    /// A responder that accepts the connection and never answers: the check gives up at the
    /// deadline (1 s here) and says unknown; the margin is wide on purpose.
    @Test func responderDownGivesUnknownWithinTheBudget() throws {
        let (checker, servers) = try checker([.ocsp, .crl], timeout: 1)
        let started = Date()
        let result = checker.check(pem: try servers.chainPEM("down"))
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed < 20)
        guard case .unknown? = result.certificates.first?.status else {
            Issue.record("not unknown: \(result)")
            return
        }
        // A second check finds the remembered failure (or the still-running fetch) at once.
        let again = checker.check(pem: try servers.chainPEM("down"), deadline: Date().addingTimeInterval(30))
        if case .unknown? = again.certificates.first?.status {} else { Issue.record("not unknown: \(again)") }
    }

    @Test func cacheInMemoryAndOnDisk() throws {
        let directory = try TemporaryDirectory(prefix: "revcache")
        let hits = LockedValue<[String]>([])
        let events = RevocationEvents(cacheHit: { kind in hits.update { $0.append(kind) } })
        let (first, servers) = try checker([.ocsp], cacheDirectory: directory.path, events: events)
        #expect(first.check(pem: try servers.chainPEM("good")).overall == .good)
        #expect(first.fetchesStarted == 1)
        let second = first.check(pem: try servers.chainPEM("good"))
        #expect(second.certificates.first?.source.hasPrefix("cache: ocsp ") == true)
        #expect(first.fetchesStarted == 1)
        #expect(hits.get() == ["ocsp"])
        // A new process (a new checker over the same directory) reads the disk copy.
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(files.count == 1 && files[0].hasSuffix(".der"))
        let (fresh, _) = try checker([.ocsp], cacheDirectory: directory.path)
        let third = fresh.check(pem: try servers.chainPEM("good"))
        #expect(third.certificates.first?.source.hasPrefix("cache: ocsp ") == true)
        #expect(fresh.fetchesStarted == 0)
    }

    @Test func cacheHonoursExpiry() {
        let cache = RevocationCache()
        cache.store("k", der: [1, 2, 3], expires: Date().addingTimeInterval(-1))
        #expect(cache.lookup("k") == nil)
        cache.store("k", der: [1, 2, 3], expires: Date().addingTimeInterval(60))
        #expect(cache.lookup("k")?.der == [1, 2, 3])
        cache.storeFailure("f", reason: "down", now: Date().addingTimeInterval(-120))
        #expect(cache.recentFailure("f") == nil)
        cache.storeFailure("f", reason: "down")
        #expect(cache.recentFailure("f") == "down")
    }

    /// Many callers (threads of their own) for one key: one fetch, every caller gets its value.
    @Test func singleFlightFetchesOncePerKey() {
        let flights = SingleFlight<Int>(maximumConcurrent: 2)
        let runs = LockedValue(0)
        let results = LockedValue<[Int]>([])
        let group = DispatchGroup()
        for _ in 0..<20 {
            group.enter()
            Thread {
                let outcome = flights.value(for: "url", deadline: Date().addingTimeInterval(30)) {
                    runs.update { $0 += 1 }
                    usleep(500_000)
                    return 42
                }
                if case .value(let v) = outcome { results.update { $0.append(v) } }
                group.leave()
            }.start()
        }
        group.wait()
        #expect(results.get() == Array(repeating: 42, count: 20))
        #expect(runs.get() == 1)
        #expect(flights.fetchesStarted == 1)
    }

    /// A caller waits no longer than its deadline; the fetch still finishes for the cache.
    @Test func singleFlightBudget() {
        let flights = SingleFlight<Int>()
        let done = LockedValue(false)
        let started = Date()
        let outcome = flights.value(for: "slow", deadline: Date().addingTimeInterval(0.2), work: {
            sleep(2)
            return 1
        }, completion: { _ in done.set(true) })
        #expect(Date().timeIntervalSince(started) < 1.9)
        if case .timedOut = outcome {} else { Issue.record("not timed out") }
        for _ in 0..<100 where !done.get() { usleep(100_000) }
        #expect(done.get())
    }

    @Test func concurrencyIsLimited() async {
        let flights = SingleFlight<Int>(maximumConcurrent: 2)
        let running = LockedValue([0, 0])
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<6 {
                group.addTask {
                    _ = flights.value(for: "url\(index)", deadline: Date().addingTimeInterval(30)) {
                        running.update { $0[0] += 1; $0[1] = max($0[1], $0[0]) }
                        usleep(200_000)
                        running.update { $0[0] -= 1 }
                        return index
                    }
                }
            }
        }
        #expect(running.get()[1] <= 2)
    }

    /// `HTTPProxy`: requests go to the proxy (a small forwarding one here) with the absolute URL.
    @Test func fetchesGoThroughTheProxy() throws {
        let servers = try RevocationServers.get()
        let port = RevocationServers.freePort()
        let log = servers.directory + "/proxy-\(port).log"
        let script = """
            import http.server, urllib.request
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self): self.forward()
                def do_POST(self): self.forward()
                def forward(self):
                    n = int(self.headers.get('Content-Length') or 0)
                    body = self.rfile.read(n) if n else None
                    with open('\(log)', 'a') as f: f.write(self.command + ' ' + self.path + '\\n')
                    request = urllib.request.Request(self.path, data=body, method=self.command)
                    if self.headers.get('Content-Type'): request.add_header('Content-Type', self.headers['Content-Type'])
                    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10) as r:
                        data, kind = r.read(), r.headers.get('Content-Type') or 'application/octet-stream'
                    self.send_response(200)
                    self.send_header('Content-Type', kind)
                    self.send_header('Content-Length', str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                def log_message(self, *a): pass
            http.server.ThreadingHTTPServer(('127.0.0.1', \(port)), H).serve_forever()
            """
        try RevocationServers.launch("python3", ["-c", script])
        try RevocationServers.waitForListener(port)
        let trust = try TrustStore(anchors: [servers.trustPEM])
        let checker = RevocationChecker(trust: trust, settings: RevocationSettings(
            methods: [.ocsp, .crl], timeout: 10, proxy: "127.0.0.1:\(port)"))
        let result = checker.check(pem: try servers.chainPEM("revoked"))
        guard case .revoked? = result.certificates.first?.status else {
            Issue.record("not revoked through the proxy: \(result)")
            return
        }
        let seen = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(seen.contains("POST http://127.0.0.1:\(servers.ocspPort)/"), "proxy log: \(seen)")
    }
}
