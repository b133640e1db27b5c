// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy
import RecipientStorePostgreSQL
#if canImport(Glibc)
import Glibc
#endif

/// The small state file of `smime-milter identity` in StateDirectory (`lifecycle.json`): per
/// address the last enrolment or renewal, its result and the CA's answer. `certs` shows it.
struct LifecycleState {
    struct Result: Codable, Equatable {
        var time: Date
        var ok: Bool
        var message: String
        var backend: String
        /// Where the identity came from: "identity new", or the directory (IdentitySource).
        var source: String?
        /// When the address left the directory (identity sync), if it did.
        var removed: Date?
        /// When its archived keys were destroyed (KeyRetentionDays), if they were.
        var keysDestroyed: Date?
        /// How many enrolments and renewals of this address succeeded and failed so far (the
        /// milter's metrics and ExpiryReport read them; absent in files of older versions).
        var succeeded: Int?
        var failed: Int?
    }

    let directory: String
    var file: String { directory + "/lifecycle.json" }

    /// Every recorded result, by address; empty when there is no (readable) state file.
    func read() -> [String: Result] {
        guard let data = FileManager.default.contents(atPath: file) else { return [:] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return (try? decoder.decode([String: Result].self, from: data)) ?? [:]
    }

    /// Records `result` for `address` (written to a temporary file and renamed: never half a file);
    /// `enrolment` results (not departures or key destruction) count in `succeeded`/`failed`.
    func record(address: String, result: Result, enrolment: Bool = false) {
        var all = read()
        var result = result
        if result.source == nil { result.source = all[address]?.source ?? "identity new" }
        // A departure stays recorded until the address is enrolled again.
        if result.removed == nil, !(result.ok && result.message.hasSuffix("done") || result.message.contains("done,")) {
            result.removed = all[address]?.removed
        }
        result.succeeded = (all[address]?.succeeded ?? 0) + (enrolment && result.ok ? 1 : 0)
        result.failed = (all[address]?.failed ?? 0) + (enrolment && !result.ok ? 1 : 0)
        all[address] = result
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(all) else { return }
        let temporary = file + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o640]),
              rename(temporary, file) == 0 else {
            FileHandle.standardError.write(Data("smime-milter: cannot write the state file \(file)\n".utf8))
            return
        }
    }
}

/// The lock that lets one `smime-milter identity` run enrol or renew at a time: the lock file
/// `StateDirectory/lifecycle.lock` (flock(2)) on this machine and, when the CertificateStore is
/// PostgreSQL, an advisory lock in that shared store, so that of several gateways only one
/// works at a time. Both are released when the process ends at the latest.
struct LifecycleLock {
    private let fd: Int32
    private let shared: PostgreSQLLifecycleLock?

    init(configuration: Configuration) throws {
        try self.init(directory: configuration.lifecycle.stateDirectory, shared: {
            guard case .postgresql(let address) = configuration.certificateStore else { return nil }
            do {
                return try PostgreSQLLifecycleLock(options: PostgreSQLStoreOptions.from(address, settings: configuration.storeSettings))
            } catch {
                throw EnrolmentLockError("the lifecycle lock in the shared store cannot be taken: \(error)")
            }
        })
    }

    /// The file lock in `directory`, then the lock `shared` makes (if any).
    init(directory: String, shared: () throws -> PostgreSQLLifecycleLock? = { nil }) throws {
        if !FileManager.default.fileExists(atPath: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o750])
        }
        let path = directory + "/lifecycle.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw EnrolmentLockError("cannot open the lock file \(path): \(String(cString: strerror(errno)))") }
        // Wait a while for another run (renew --due of many identities takes minutes at most).
        let deadline = Date().addingTimeInterval(300)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, Date() < deadline else {
                close(fd)
                throw EnrolmentLockError("another smime-milter identity run holds \(path); try again later")
            }
            usleep(200_000)
        }
        do {
            self.shared = try shared()
        } catch {
            close(fd)
            throw error
        }
    }

    func release() {
        shared?.release()
        close(fd)
    }
}

struct EnrolmentLockError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
