// SPDX-License-Identifier: Apache-2.0
import Foundation
import SMIME

/// A fresh test PKI made once per test run by `Tests/fixtures/make_test_pki.py`.
struct TestPKI: Sendable {
    /// The folder holding root.pem, certs/, bad/, other/.
    let directory: String

    var certs: String { directory + "/certs" }
    var bad: String { directory + "/bad" }
    /// Recipient certificates (with their keys) for the encryption tests.
    var enc: String { directory + "/enc" }
    var rootPEM: String { directory + "/root.pem" }

    /// The repository root, found from this file's path (never an absolute machine path).
    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url.path
            }
            url.deleteLastPathComponent()
        }
        return "."
    }()

    /// The shared PKI, or the error that kept it from being made.
    static let shared: Result<TestPKI, any Error> = Result { try make() }

    /// The shared PKI; throws (failing the test) when it could not be made.
    static func get() throws -> TestPKI { try shared.get() }

    private static func make() throws -> TestPKI {
        let directory = FileManager.default.temporaryDirectory.path + "/smime-tests-pki-" + UUID().uuidString
        let script = repositoryRoot + "/Tests/fixtures/make_test_pki.py"
        let result = try Subprocess.run("python3", [script, directory])
        guard result.status == 0 else {
            throw TestFailure("make_test_pki.py failed: \(result.combined)")
        }
        pkiDirectoryForCleanup.set(directory)
        atexit { if let path = pkiDirectoryForCleanup.get() { try? FileManager.default.removeItem(atPath: path) } }
        return TestPKI(directory: directory)
    }

    /// The identity `name` from certs/, loaded with the single-identity loader.
    func identity(_ name: String) throws -> SigningIdentity {
        try IdentityLoader.load(name: name, directory: certs)
    }
}

/// Where the PKI lives, for the exit-time cleanup (a C callback cannot capture context).
let pkiDirectoryForCleanup = LockedValue<String?>(nil)

/// A value behind a lock, for the few globals the tests need.
final class LockedValue<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.withLock { value } }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
    func update(_ body: (inout Value) -> Void) { lock.withLock { body(&value) } }
}

/// A test-support error with a message.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
