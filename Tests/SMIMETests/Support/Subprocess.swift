// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The outcome of running an external program.
struct ProcessResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
    /// stdout and stderr together, for messages.
    var combined: String { stdout + stderr }
}

/// Runs external verifiers (openssl, cmsutil, gpgsm) for the interoperability tests.
enum Subprocess {
    /// Runs `executable` (looked up in PATH) with `arguments`; output goes through temporary
    /// files so a chatty program can never block on a full pipe.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                    in directory: String? = nil) throws -> ProcessResult {
        let scratch = try TemporaryDirectory(prefix: "proc")
        let outPath = scratch.path + "/stdout", errPath = scratch.path + "/stderr"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardInput = FileHandle.nullDevice
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        defer { try? out.close(); try? err.close() }
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        return ProcessResult(
            status: process.terminationStatus,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        )
    }
}

/// A directory under the system temporary folder, removed when the value is released.
final class TemporaryDirectory: Sendable {
    let path: String

    init(prefix: String) throws {
        let base = FileManager.default.temporaryDirectory.path
        path = base + "/smime-tests-\(prefix)-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    /// Writes `bytes` to `name` inside the directory and returns the path.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8], mode: Int = 0o600) throws -> String {
        let file = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file)
        return file
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
