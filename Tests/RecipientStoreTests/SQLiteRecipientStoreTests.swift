// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy
import RecipientStoreSQLite
import Testing

/// A private folder, removed at the end.
final class Scratch: Sendable {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/smime-store-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    var store: String { path + "/recipients.sqlite" }
}

func record(_ address: String, _ serial: Int, issued days: Double, capabilities: [String]? = nil,
            source: RecipientCertificateSource = .harvested) -> StoredRecipientCertificate {
    let issued = Date(timeIntervalSince1970: 1_800_000_000 + days * 86_400)
    return StoredRecipientCertificate(
        address: address, fingerprint: String(format: "%064x", serial), certificateDER: [0x30, UInt8(serial & 0xFF)],
        intermediatesDER: [[1, 2, 3], [], [4]], capabilities: capabilities.map(SMIMECapabilitiesValue.make),
        subject: "CN=\(address)", issuer: "CN=Test CA", serialHex: String(serial, radix: 16), notBefore: issued,
        notAfter: issued.addingTimeInterval(365 * 86_400), source: source, addedAt: issued)
}

import SMIME
enum SMIMECapabilitiesValue { static func make(_ oids: [String]) -> SMIMECapabilities { SMIMECapabilities(algorithms: oids) } }

/// The same rules hold for the SQLite store and the in-memory one the policy's tests use.
func makeStore(_ kind: String, _ scratch: Scratch) throws -> any RecipientCertificateStore {
    kind == "memory" ? MemoryRecipientStore() : try SQLiteRecipientStore(path: scratch.store)
}

@Suite("SQLite recipient store")
struct SQLiteRecipientStoreTests {
    @Test(arguments: ["sqlite", "memory"])
    func newerReplacesOlderAndHistoryIsKept(kind: String) throws {
        let scratch = try Scratch()
        let store = try makeStore(kind, scratch)
        #expect(try store.current(for: "dave@partner.example") == nil)
        #expect(try store.upsert(record("Dave@Partner.example", 1, issued: 0)) == .inserted)
        #expect(try store.current(for: "DAVE@partner.example")?.fingerprint == String(format: "%064x", 1))
        #expect(try store.upsert(record("dave@partner.example", 2, issued: 10)) == .replaced(previousFingerprint: String(format: "%064x", 1)))
        // An older one arriving later does not take over.
        #expect(try store.upsert(record("dave@partner.example", 3, issued: 5)) == .keptAsHistory)
        #expect(try store.current(for: "dave@partner.example")?.serialHex == "2")
        let history = try store.history(for: "dave@partner.example")
        #expect(history.map(\.serialHex) == ["2", "3", "1"])
        #expect(history.filter(\.isCurrent).count == 1)
        #expect(history[0].intermediatesDER == [[1, 2, 3], [], [4]])
    }

    @Test(arguments: ["sqlite", "memory"])
    func sameCertificateAgainRefreshesCapabilities(kind: String) throws {
        let scratch = try Scratch()
        let store = try makeStore(kind, scratch)
        try store.upsert(record("erin@partner.example", 1, issued: 0, capabilities: [SMIMECapabilities.aes256CBC]))
        var again = record("erin@partner.example", 1, issued: 0, capabilities: [SMIMECapabilities.aes256GCM, SMIMECapabilities.aes256CBC])
        again.lastSeenAt = again.addedAt.addingTimeInterval(3_600)
        #expect(try store.upsert(again) == .refreshed)
        let current = try #require(try store.current(for: "erin@partner.example"))
        #expect(current.capabilities?.announcesAES256GCM == true)
        #expect(current.lastSeenAt == again.lastSeenAt)
        // No announcement this time: the known capabilities stay.
        #expect(try store.upsert(record("erin@partner.example", 1, issued: 0)) == .refreshed)
        #expect(try store.current(for: "erin@partner.example")?.capabilities?.announcesAES256GCM == true)
        #expect(try store.history(for: "erin@partner.example").count == 1)
    }

    @Test(arguments: ["sqlite", "memory"])
    func removeListAndLog(kind: String) throws {
        let scratch = try Scratch()
        let store = try makeStore(kind, scratch)
        try store.upsert(record("b@x.example", 1, issued: 0, source: .imported))
        try store.upsert(record("a@x.example", 2, issued: 0, source: .directory))
        try store.upsert(record("a@x.example", 3, issued: 1))
        #expect(try store.list().map(\.address) == ["a@x.example", "b@x.example"])
        #expect(try store.list().map(\.source) == [.harvested, .imported])
        #expect(try store.remove(address: "A@x.example") == 2)
        #expect(try store.remove(address: "nobody@x.example") == 0)
        #expect(try store.list().map(\.address) == ["b@x.example"])
        let now = Date(timeIntervalSince1970: 1_900_000_000)
        try store.logHarvestDecision(HarvestLogEntry(time: now, address: "b@x.example", fingerprint: "ab", kept: true, reason: "kept", queueID: "Q1"))
        try store.logHarvestDecision(HarvestLogEntry(time: now, address: "c@x.example", fingerprint: nil, kept: false, reason: "refused: untrusted"))
        let log = try store.harvestLog(limit: 10)
        #expect(log.map(\.address) == ["c@x.example", "b@x.example"])
        #expect(log[1].queueID == "Q1" && log[1].kept && !log[0].kept && log[0].fingerprint == nil)
        #expect(try store.harvestLog(limit: 1).count == 1)
    }

    @Test func survivesReopenAndIsInWALMode() throws {
        let scratch = try Scratch()
        do {
            let store = try SQLiteRecipientStore(path: scratch.store)
            try store.upsert(record("a@x.example", 1, issued: 0))
        }
        let again = try SQLiteRecipientStore(path: scratch.store)
        #expect(try again.current(for: "a@x.example") != nil)
        #expect(try again.quickCheck() == "ok")
        let header = try #require(FileHandle(forReadingAtPath: scratch.store)).readData(ofLength: 20)
        #expect(header.count == 20 && header[18] == 2 && header[19] == 2, "WAL mode is recorded in bytes 18-19 of the header")
        let mode = try FileManager.default.attributesOfItem(atPath: scratch.store)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func garbageFileIsAClearError() throws {
        let scratch = try Scratch()
        try Data(repeating: 0x41, count: 8_192).write(to: URL(fileURLWithPath: scratch.store))
        do {
            _ = try SQLiteRecipientStore(path: scratch.store)
            Issue.record("a file of garbage opened as a store")
        } catch let error as RecipientStoreError {
            #expect(error.kind == .corrupt, "\(error)")
            #expect(error.message.contains(scratch.store))
        }
    }

    @Test func damagedPagesFailTheIntegrityCheck() throws {
        let scratch = try Scratch()
        do {
            let store = try SQLiteRecipientStore(path: scratch.store)
            for index in 0..<300 { try store.upsert(record("u\(index)@x.example", index, issued: 0)) }
        }
        // Checkpointed on close: the data is in the main file. Overwrite pages in the middle.
        let handle = try #require(FileHandle(forUpdatingAtPath: scratch.store))
        let size = try handle.seekToEnd()
        #expect(size > 16_384)
        try handle.seek(toOffset: 8_192)
        handle.write(Data((0..<(Int(size) - 12_288)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }))
        try handle.close()
        do {
            let store = try SQLiteRecipientStore(path: scratch.store)
            Issue.record("a damaged store opened: \(try store.quickCheck())")
        } catch let error as RecipientStoreError {
            #expect(error.kind == .corrupt, "\(error)")
        }
    }

    @Test func aNewerSchemaIsRefused() throws {
        let scratch = try Scratch()
        _ = try SQLiteRecipientStore(path: scratch.store)
        let sqlite = try Subprocess.run("python3", ["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"INSERT INTO grdb_migrations VALUES ('v99')\"); c.commit()", scratch.store])
        #expect(sqlite.status == 0, "\(sqlite.combined)")
        #expect { try SQLiteRecipientStore(path: scratch.store) } throws: { ($0 as? RecipientStoreError)?.kind == .newerSchema }
    }

    @Test func unwritableLocationIsUnavailable() throws {
        #expect { try SQLiteRecipientStore(path: "/nonexistent-dir-\(UUID().uuidString)/store.sqlite") } throws: {
            ($0 as? RecipientStoreError)?.kind == .unavailable
        }
    }

    @Test func concurrentWritersFromManyThreads() throws {
        let scratch = try Scratch()
        let store = try SQLiteRecipientStore(path: scratch.store)
        let threads = 16, perThread = 40
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for step in 0..<perThread {
                do {
                    // Shared addresses (replacement races) and private ones, reads in between.
                    let serial = thread * perThread + step
                    try store.upsert(record("shared\(step % 5)@x.example", serial, issued: Double(serial)))
                    try store.upsert(record("t\(thread)@x.example", serial, issued: Double(step)))
                    _ = try store.current(for: "shared\(step % 5)@x.example")
                    try store.logHarvestDecision(HarvestLogEntry(time: Date(), address: "t\(thread)@x.example",
                                                                 fingerprint: nil, kept: true, reason: "kept"))
                } catch {
                    failures.add("\(error)")
                }
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all.prefix(3))")
        #expect(try store.certificateCount() == 2 * threads * perThread)
        #expect(try store.harvestLog(limit: 10_000).count == threads * perThread)
        for step in 0..<5 {
            let history = try store.history(for: "shared\(step)@x.example")
            #expect(history.filter(\.isCurrent).count == 1)
            // The current one is the newest of all, whatever order the threads ran in.
            #expect(history.first?.isCurrent == true)
        }
        for thread in 0..<threads {
            #expect(try store.current(for: "t\(thread)@x.example")?.notBefore == record("t", 0, issued: Double(perThread - 1)).notBefore)
        }
        #expect(try store.quickCheck() == "ok")
    }

    @Test func killedInTheMiddleOfWritesLeavesASoundStore() throws {
        let helper = try Helper.path("recipient-store-stress")
        let scratch = try Scratch()
        var committedBefore = 0
        for round in 1...3 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: helper)
            process.arguments = [scratch.store, "1000000", String(round * 1_000_000)]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Wait until it has committed a few hundred more writes (a different point each round), then kill -9.
            var seen = 0
            var buffer = Data()
            let target = 150 * round
            while seen < target {
                let chunk = pipe.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                if let text = String(data: buffer, encoding: .utf8),
                   let last = text.split(separator: "\n").last(where: { _ in text.hasSuffix("\n") }), let value = Int(last) {
                    seen = value
                }
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal, "round \(round): the helper ended by itself")
            #expect(seen >= target, "round \(round): only \(seen) writes reported")
            let store = try SQLiteRecipientStore(path: scratch.store)
            #expect(try store.quickCheck() == "ok")
            // Every reported write is there (it was committed before it was reported).
            let count = try store.certificateCount()
            #expect(count >= committedBefore + seen, "round \(round): \(count) rows for \(committedBefore) + \(seen) writes")
            #expect(try store.list().count == 40)
            committedBefore = count
        }
    }
}

final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ item: String) { lock.withLock { items.append(item) } }
    var all: [String] { lock.withLock { items } }
}

enum Helper {
    /// A product of this package next to the test bundle (`swift build --build-tests` builds it).
    static func path(_ name: String) throws -> String {
        var candidates: [String] = []
        if let bundle = Bundle.main.executableURL?.deletingLastPathComponent() { candidates.append(bundle.path + "/" + name) }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().path + "/" + name)
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                candidates.append(url.path + "/.build/debug/" + name)
                break
            }
            url.deleteLastPathComponent()
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw HelperMissing(description: "\(name) not built (looked in \(candidates))")
        }
        return found
    }
}

struct HelperMissing: Error, CustomStringConvertible { let description: String }

enum Subprocess {
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, combined: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
