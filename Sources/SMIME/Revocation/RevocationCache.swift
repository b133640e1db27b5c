// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// OCSP responses and CRLs already fetched, in memory and (with a directory) on disk, each kept
/// until its own nextUpdate. Entries are raw DER: whoever reads one verifies it again with
/// OpenSSL (signature, validity against the current time), so an entry that went stale or was
/// tampered with on disk is refused by the same checks as a fresh fetch.
///
/// A failed fetch is remembered in memory only, for `failureSeconds`, so a responder that is
/// down costs each message nothing once the first fetch has timed out.
public final class RevocationCache: @unchecked Sendable {
    /// The directory for the disk copies (private, 0700), or nil for memory only.
    public let directory: String?
    /// A store shared by several gateways (the PostgreSQL certificate store), used instead of
    /// the directory when set: what one gateway fetched, the others reuse.
    public let shared: (any SharedRevocationStore)?
    /// How long a failed fetch is remembered.
    public let failureSeconds: TimeInterval
    /// At most this many entries in memory (the oldest expiry is dropped first).
    public let capacity: Int

    private struct Entry {
        let der: [UInt8]
        let expires: Date
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var failures: [String: (reason: String, until: Date)] = [:]

    public init(directory: String? = nil, failureSeconds: TimeInterval = 60, capacity: Int = 10_000,
                shared: (any SharedRevocationStore)? = nil) {
        self.shared = shared
        self.directory = shared == nil ? directory : nil
        self.failureSeconds = failureSeconds
        self.capacity = capacity
        if let directory = self.directory {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
        }
    }

    /// Where a cached value came from.
    public enum Origin: String, Sendable {
        case memory, disk, shared
    }

    /// The DER stored for `key` and not yet expired; the disk copy (when there is no memory
    /// entry) is returned whatever its age, for the caller to verify and date.
    public func lookup(_ key: String, now: Date = Date()) -> (der: [UInt8], origin: Origin)? {
        if let entry = lock.withLock({ entries[key] }), entry.expires > now { return (entry.der, .memory) }
        if let shared {
            guard let found = shared.load(key) else { return nil }
            // Kept in memory too, so the next message does not ask the database again.
            if found.expires > now { lock.withLock { entries[key] = Entry(der: found.der, expires: found.expires) } }
            return (found.der, .shared)
        }
        guard let file = path(for: key), let data = FileManager.default.contents(atPath: file), !data.isEmpty else {
            return nil
        }
        return ([UInt8](data), .disk)
    }

    /// The reason of a recent failed fetch for `key`, if it is still remembered.
    public func recentFailure(_ key: String, now: Date = Date()) -> String? {
        lock.withLock {
            guard let failure = failures[key] else { return nil }
            if failure.until > now { return failure.reason }
            failures[key] = nil
            return nil
        }
    }

    /// Keeps `der` for `key` until `expires` (in memory, and on disk when a directory is set).
    public func store(_ key: String, der: [UInt8], expires: Date, onDisk: Bool = true) {
        lock.withLock {
            failures[key] = nil
            if entries.count >= capacity, entries[key] == nil,
               let oldest = entries.min(by: { $0.value.expires < $1.value.expires })?.key {
                entries[oldest] = nil
            }
            entries[key] = Entry(der: der, expires: expires)
        }
        if onDisk, let shared {
            shared.save(key, der: der, expires: expires)
            return
        }
        guard onDisk, let file = path(for: key) else { return }
        // Written beside and renamed, so a reader never sees half a file.
        let temporary = file + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        if FileManager.default.createFile(atPath: temporary, contents: Data(der), attributes: [.posixPermissions: 0o600]) {
            if rename(temporary, file) != 0 { unlink(temporary) }
        }
    }

    /// Remembers that fetching `key` failed.
    public func storeFailure(_ key: String, reason: String, now: Date = Date()) {
        lock.withLock { failures[key] = (reason, now.addingTimeInterval(failureSeconds)) }
    }

    /// Drops the memory copy of `key` (a disk copy that failed verification is removed too).
    public func remove(_ key: String) {
        _ = lock.withLock { entries.removeValue(forKey: key) }
        shared?.delete(key)
        if let file = path(for: key) { unlink(file) }
    }

    /// The file for `key`: its SHA-256 in hex (keys hold URLs, which are not file names).
    func path(for key: String) -> String? {
        guard let directory else { return nil }
        var digest = [UInt8](repeating: 0, count: 32)
        let bytes = Array(key.utf8)
        _ = SHA256(bytes, bytes.count, &digest)
        return directory + "/" + digest.map { String(format: "%02x", $0) }.joined() + ".der"
    }
}

/// Where OCSP responses and CRLs are kept for several gateways at once (the PostgreSQL store's
/// `revocation_cache` table). Best effort: a store that cannot answer returns nil or drops the
/// write, and the checker fetches from the responder as without it. Entries are verified again
/// by whoever reads them, like the disk copies.
public protocol SharedRevocationStore: Sendable {
    /// The DER kept for `key` and when it expires, whatever its age (the reader verifies and dates it).
    func load(_ key: String) -> (der: [UInt8], expires: Date)?
    /// Keeps `der` for `key` until `expires` (its nextUpdate).
    func save(_ key: String, der: [UInt8], expires: Date)
    /// Drops `key` (it failed verification).
    func delete(_ key: String)
}
