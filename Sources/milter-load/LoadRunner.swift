// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Histogram
import Synchronization

/// What one run does.
struct LoadOptions: Sendable {
    var endpoint: Endpoint
    var mode: String
    var concurrency: Int
    var seconds: Double?
    var messages: Int?
    var messagesPerConnection: Int
    var clientAddress: String
    var saveDirectory: String?
    var saveCount: Int
    var expectSigned: Bool
    var milterPID: Int32?
    var mtaLikeWrites = false
}

/// What one session (thread) measured.
struct SessionResult: Sendable {
    var latency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    var messages = 0
    var bytes = 0
    var verdicts: [String: Int] = [:]
    var modified = 0
    var unsigned = 0
    var errors = 0
    var errorTexts: [String] = []
    var connections = 0

    mutating func error(_ text: String) {
        errors += 1
        if errorTexts.count < 5 { errorTexts.append(text) }
    }

    mutating func merge(_ other: SessionResult) {
        latency.add(other.latency)
        messages += other.messages
        bytes += other.bytes
        for (k, v) in other.verdicts { verdicts[k, default: 0] += v }
        modified += other.modified
        unsigned += other.unsigned
        errors += other.errors
        errorTexts += other.errorTexts.prefix(max(0, 5 - errorTexts.count))
        connections += other.connections
    }
}

/// The whole run's figures.
struct LoadReport: Sendable {
    var options: LoadOptions
    var messageSize: Int
    var total: SessionResult
    var seconds: Double
    var clientCPUSeconds: Double
    var milterBefore: ProcessSampleValue?
    var milterAfter: ProcessSampleValue?
}

/// ProcessSample as a Sendable value.
struct ProcessSampleValue: Sendable {
    var cpuSeconds: Double
    var rssKB: Int
    var peakKB: Int
}

/// Runs `concurrency` sessions, each on its own thread with blocking sockets: a thread per
/// session is the simplest client that cannot stall on itself, and at 200 sessions it is still
/// far cheaper than the milter's work per message.
enum LoadRunner {
    static func run(_ options: LoadOptions, message: PreparedMessage) -> LoadReport {
        let shared = SharedState()
        let start = ContinuousClock.now
        let deadline = options.seconds.map { start + .milliseconds(Int($0 * 1000)) }
        let milterPID = options.milterPID
        if let pid = milterPID { ProcessSample.resetPeak(pid: pid) }
        let before = milterPID.flatMap { ProcessSample.read(pid: $0) }
        let cpuBefore = ProcessSample.ownCPUSeconds()
        let done = DispatchSemaphore(value: 0)

        for sessionNumber in 0..<options.concurrency {
            let thread = Thread {
                var result = SessionResult()
                runSession(number: sessionNumber, options: options, message: message, deadline: deadline,
                           shared: shared, result: &result)
                shared.results.withLock { $0.append(result) }
                done.signal()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        for _ in 0..<options.concurrency { done.wait() }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let after = milterPID.flatMap { ProcessSample.read(pid: $0) }
        var total = SessionResult()
        for r in shared.results.withLock({ $0 }) { total.merge(r) }
        func value(_ s: ProcessSample?) -> ProcessSampleValue? {
            s.map { ProcessSampleValue(cpuSeconds: $0.cpuSeconds, rssKB: $0.rssKB, peakKB: $0.peakKB) }
        }
        return LoadReport(options: options, messageSize: message.template.size, total: total, seconds: seconds,
                          clientCPUSeconds: ProcessSample.ownCPUSeconds() - cpuBefore,
                          milterBefore: value(before), milterAfter: value(after))
    }

    /// One session: connections of `messagesPerConnection` messages until the run ends.
    private static func runSession(number: Int, options: LoadOptions, message: PreparedMessage,
                                   deadline: ContinuousClock.Instant?, shared: SharedState,
                                   result: inout SessionResult) {
        var session: MilterSession?
        var onThisConnection = 0
        func claim() -> Int? {
            if let deadline, ContinuousClock.now >= deadline { return nil }
            let n = shared.issued.add(1, ordering: .relaxed).newValue
            if let limit = options.messages, n > limit { return nil }
            return n
        }
        while let n = claim() {
            do {
                if session == nil || (options.messagesPerConnection > 0 && onThisConnection >= options.messagesPerConnection) {
                    session?.quit()
                    let s: MilterSession
                    do {
                        s = try MilterSession(endpoint: options.endpoint, mtaLikeWrites: options.mtaLikeWrites)
                    } catch {
                        // Nobody listens: this session is over (no busy loop of refused connects).
                        result.error("message \(n): \(error)")
                        break
                    }
                    try s.negotiate()
                    guard try s.connect(clientAddress: options.clientAddress, hostname: "client\(number).milter-load.test") else {
                        result.error("milter ended the connection at CONNECT/HELO")
                        session = nil
                        continue
                    }
                    s.keepBody = options.saveDirectory != nil
                    session = s
                    onThisConnection = 0
                    result.connections += 1
                }
                guard let s = session else { continue }
                let started = ContinuousClock.now
                let outcome = try s.send(message, queueID: String(format: "ML%05X%06X", number, n))
                let elapsed = ContinuousClock.now - started
                onThisConnection += 1
                let micros = UInt64(elapsed.components.seconds) * 1_000_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000_000)
                _ = result.latency.record(max(micros, 1))
                result.messages += 1
                result.bytes += message.template.size
                result.verdicts[outcome.verdict.rawValue, default: 0] += 1
                let signed = outcome.replacedBodyBytes > 0
                if signed { result.modified += 1 } else { result.unsigned += 1 }
                if options.expectSigned && (!signed || outcome.verdict != .accept && outcome.verdict != .continue) {
                    result.error("message \(n) not signed: verdict \(outcome.verdict.rawValue), \(outcome.replacedBodyBytes) body bytes")
                }
                if let directory = options.saveDirectory, shared.saved.add(1, ordering: .relaxed).newValue <= options.saveCount {
                    let bytes = ResultMessage.render(message, outcome: outcome, leadingSpace: s.negotiated.has(Wire.headerLeadingSpace))
                    try ResultMessage.write(bytes, to: "\(directory)/\(String(format: "%05d", n)).eml")
                }
            } catch {
                result.error("message \(n): \(error)")
                session = nil
            }
        }
        session?.quit()
    }
}

/// Counters and results the session threads share.
final class SharedState: Sendable {
    /// Messages claimed so far (for --messages and message numbers).
    let issued = Atomic<Int>(0)
    /// Results saved so far (for --save-count).
    let saved = Atomic<Int>(0)
    let results = Mutex<[SessionResult]>([])
}
