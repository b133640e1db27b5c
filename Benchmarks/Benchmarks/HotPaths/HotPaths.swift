// SPDX-License-Identifier: Apache-2.0
import Benchmark
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MIME
import SMIME

// The per-message work of the milter without the protocol: making the signable entity
// (SignableEntity.make: MIME parse + 7-bit canonical form) and the CMS signature over it;
// on the inbound side, CMS verification of a 2 KB signed entity (signature, digest and the
// certificate path) and the whole-message verifier (MIME parse, base64, CMS, From check).

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        timeUnits: .microseconds,
        maxDuration: BenchEnvironment.quick ? .milliseconds(400) : .seconds(3),
        maxIterations: 1_000_000
    )

    for (label, size) in [("2 KB", 2 * 1024), ("1 MB", 1024 * 1024)] {
        let message = BenchMessage.make(size: size)
        Benchmark("SignableEntity.make \(label)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try SignableEntity.make(fields: message.fields, body: message.body))
            }
        }
    }

    let entity2K = try? SignableEntity.make(fields: BenchMessage.make(size: 2048).fields,
                                            body: BenchMessage.make(size: 2048).body)
    for (label, name) in [("RSA-2048", "alice"), ("ECDSA P-256", "bob")] {
        Benchmark("CMS sign \(label) 2 KB") { benchmark in
            guard let identity = BenchEnvironment.identities.identity(named: name), let entity = entity2K else {
                fatalError("test identity \(name) not loaded: \(BenchEnvironment.identities.rejected)")
            }
            for _ in benchmark.scaledIterations {
                blackHole(try CMSSigner.sign(content: entity.bytes, identity: identity, digest: .sha256, detached: true))
            }
        }
    }

    // Verification: a 2 KB message signed by alice (RSA-2048, detached), as the milter makes it.
    // The closures run once per measured iteration: everything but the call itself is made
    // outside them, once.
    for (label, name) in [("RSA-2048", "alice"), ("ECDSA P-256", "bob")] {
        let signed = BenchEnvironment.signed(by: name)
        // Parsing alone (d2i_CMS_ContentInfo, which parses the certificates the signature carries):
        // the share of verification that OpenSSL 3.0's key decoders take.
        Benchmark("CMS parse \(label) 2 KB") { benchmark in
            for _ in benchmark.scaledIterations {
                guard CMSVerifier.kind(ofDER: signed.der) == .signedData else { fatalError("benchmark signature does not parse") }
            }
        }
        Benchmark("CMS verify \(label) 2 KB") { benchmark in
            let verifier = CMSVerifier(trust: BenchEnvironment.trust)
            let now = Date()
            for _ in benchmark.scaledIterations {
                let checked = verifier.verify(signedData: signed.der, detachedContent: signed.entity, at: now)
                guard checked.status == .verified else { fatalError("benchmark message does not verify: \(checked.status)") }
                blackHole(checked)
            }
        }
        // The same verifications on several threads at once, one trust store shared, as the
        // milter's libmilter threads share it: the limit on both cores measured rather than
        // taken as twice one thread's, and on eight threads (the bench's concurrency) whatever
        // the threads cost each other (OpenSSL's locks, the allocator). One iteration is
        // `verificationsPerBatch` verifications; the time per verification is p50 / that.
        if name == "alice" {
            for threads in [2, 8] {
                Benchmark("CMS verify \(label) 2 KB, \(BenchEnvironment.verificationsPerBatch) on \(threads) threads") { benchmark in
                    let verifier = CMSVerifier(trust: BenchEnvironment.trust)
                    let now = Date()
                    let each = BenchEnvironment.verificationsPerBatch / threads
                    // Threads of their own (DispatchQueue.concurrentPerform would run at most
                    // one per core), kept for the whole run and started per iteration.
                    let pool = BatchThreads(count: threads) {
                        for _ in 0..<each {
                            let checked = verifier.verify(signedData: signed.der, detachedContent: signed.entity, at: now)
                            guard checked.status == .verified else { fatalError("benchmark message does not verify: \(checked.status)") }
                            blackHole(checked)
                        }
                    }
                    defer { pool.stop() }
                    for _ in benchmark.scaledIterations {
                        pool.runOnce()
                    }
                }
            }
        }
        Benchmark("MessageVerifier \(label) 2 KB message") { benchmark in
            let verifier = MessageVerifier(trust: BenchEnvironment.trust)
            let now = Date()
            for _ in benchmark.scaledIterations {
                let report = verifier.verify(fields: signed.fields, body: signed.body, fromAddress: signed.from, at: now)
                guard report.result == .pass else { fatalError("benchmark message does not pass: \(report)") }
                blackHole(report)
            }
        }
    }
}

/// `count` threads that each run `work` once per `runOnce()`, which returns when all have.
/// `stop()` joins them: a thread still ending (OpenSSL's per-thread clean-up runs as it exits)
/// while the process exits and OpenSSL's atexit clean-up runs crashed the benchmark.
final class BatchThreads: @unchecked Sendable {
    private let starts: [DispatchSemaphore]
    private let done = DispatchSemaphore(value: 0)
    private let stopping = StopFlag()
    private var threads: [pthread_t] = []

    private final class Worker {
        let start: DispatchSemaphore, done: DispatchSemaphore, stopping: StopFlag, work: @Sendable () -> Void
        init(start: DispatchSemaphore, done: DispatchSemaphore, stopping: StopFlag, work: @escaping @Sendable () -> Void) {
            (self.start, self.done, self.stopping, self.work) = (start, done, stopping, work)
        }
        func run() {
            while true {
                start.wait()
                if stopping.isSet { return }
                work()
                done.signal()
            }
        }
    }

    init(count: Int, work: @escaping @Sendable () -> Void) {
        starts = (0..<count).map { _ in DispatchSemaphore(value: 0) }
        for start in starts {
            let worker = Unmanaged.passRetained(Worker(start: start, done: done, stopping: stopping, work: work)).toOpaque()
            var thread = pthread_t()
            let made = pthread_create(&thread, nil, { argument in
                Unmanaged<Worker>.fromOpaque(argument!).takeRetainedValue().run()
                return nil
            }, worker)
            guard made == 0 else { fatalError("pthread_create: \(made)") }
            threads.append(thread)
        }
    }

    func runOnce() {
        for start in starts { start.signal() }
        for _ in starts { done.wait() }
    }

    func stop() {
        stopping.set()
        for start in starts { start.signal() }
        for thread in threads { pthread_join(thread, nil) }
    }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// A plain-text message like the load generator's: 72-character US-ASCII lines.
enum BenchMessage {
    static func make(size: Int) -> (fields: [HeaderField], body: [UInt8]) {
        let fields = [
            HeaderField(name: "From", value: " Bench <alice@example.com>"),
            HeaderField(name: "To", value: " <someone@sink.test>"),
            HeaderField(name: "Subject", value: " benchmark"),
            HeaderField(name: "MIME-Version", value: " 1.0"),
            HeaderField(name: "Content-Type", value: " text/plain; charset=us-ascii"),
        ]
        let words = Array("the quick brown fox jumps over the lazy dog 0123456789 statements newsletter ".utf8)
        var body: [UInt8] = []
        var line = 0
        while body.count < size {
            for i in 0..<72 { body.append(words[(line * 7 + i) % words.count]) }
            if body.last == 0x20 { body[body.count - 1] = UInt8(ascii: ".") }
            body.append(contentsOf: [0x0D, 0x0A])
            line += 1
        }
        return (fields, body)
    }
}

/// The test PKI: $SMIME_BENCH_PKI (a folder made by Tests/fixtures/make_test_pki.py), else one
/// made now in a temporary folder.
enum BenchEnvironment {
    static let quick = ProcessInfo.processInfo.environment["BENCH_QUICK"] == "1"

    /// Verifications per iteration of the multi-threaded benchmarks (a multiple of 2 and of 8).
    static let verificationsPerBatch = 64

    /// The folder of the test PKI.
    static let pkiDirectory: String = {
        if let given = ProcessInfo.processInfo.environment["SMIME_BENCH_PKI"] { return given }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let directory = NSTemporaryDirectory() + "smime-bench-pki-\(getpid())"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", repo.appendingPathComponent("Tests/fixtures/make_test_pki.py").path, directory]
        try? p.run()
        p.waitUntilExit()
        return directory
    }()

    static let identities: IdentityStore = IdentityStore.load(directory: pkiDirectory + "/certs")

    /// The test root (the signers' chain ends there).
    static let trust: TrustStore = {
        guard let store = try? TrustStore(anchors: [pkiDirectory + "/trust.pem"]) else { fatalError("cannot load \(pkiDirectory)/trust.pem") }
        return store
    }()

    /// A 2 KB message signed (detached) by `name`: the DER, the signed entity, and the whole
    /// multipart/signed message as header fields and body.
    static func signed(by name: String) -> (der: [UInt8], entity: [UInt8], fields: [HeaderField], body: [UInt8], from: String) {
        let message = BenchMessage.make(size: 2048)
        guard let identity = identities.identity(named: name),
              let entity = try? SignableEntity.make(fields: message.fields, body: message.body),
              let der = try? CMSSigner.sign(content: entity.bytes, identity: identity, digest: .sha256, detached: true)
        else { fatalError("cannot sign the benchmark message as \(name)") }
        guard let whole = try? SMIMEWriter.multipartSigned(entity: entity.bytes, signature: der, digest: .sha256) else {
            fatalError("cannot frame the benchmark message")
        }
        let from = "\(name)@example.com"
        let fields = [HeaderField(name: "From", value: " <\(from)>"), HeaderField(name: "To", value: " <someone@sink.test>"),
                      HeaderField(name: "Subject", value: " benchmark"), HeaderField(name: "MIME-Version", value: " 1.0")]
        return (der, entity.bytes, fields + [HeaderField(name: "Content-Type", value: " " + whole.contentType)], whole.body, from)
    }
}
