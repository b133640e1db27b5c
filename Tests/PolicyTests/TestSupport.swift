// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import Policy

/// The repository root, found from this file's path (Tests/PolicyTests/TestSupport.swift).
let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A fresh temporary directory, removed when the value is released by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("policy-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    /// Writes `text` to `name` inside the directory and returns the file's path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Parses `text` as the file `file`; adds a `CertificateDir` line at the end (after every line
/// under test, so line numbers are unchanged) unless the text sets one itself.
func parseConfig(_ text: String, file: String = "t.conf") throws -> Configuration {
    var contents = text
    if !text.lowercased().contains("certificatedir") {
        contents += "\nCertificateDir /nonexistent/certs\n"
    }
    return try ConfigurationParser.parse(contents: contents, file: file)
}

/// The `ConfigurationError` `body` throws, or nil (and a recorded issue) when it throws none.
func configurationError(
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Any
) -> ConfigurationError? {
    do {
        _ = try body()
        Issue.record("expected a ConfigurationError, got success", sourceLocation: sourceLocation)
    } catch let error as ConfigurationError {
        return error
    } catch {
        Issue.record("expected a ConfigurationError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
