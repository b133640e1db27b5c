// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import smime_milter

@Suite("Archiving an identity's previous pair")
struct IdentityInstallerTests {
    @Test func twoPairsArchivedUnderOneTagAreBothKept() throws {
        // A pair that does not load is archived under the time; two in one second must not
        // replace each other (rename(2) would, and the first key would be gone).
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("installer-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let installer = IdentityInstaller(directory: directory)
        let now = Date(timeIntervalSince1970: 1_796_472_000)
        for round in 1...3 {
            try Data("not a certificate \(round)\n".utf8).write(to: URL(fileURLWithPath: "\(directory)/kay@example.com.pem"))
            try Data("not a key \(round)\n".utf8).write(to: URL(fileURLWithPath: "\(directory)/kay@example.com.key"))
            try installer.archiveCurrent(address: "kay@example.com", now: now)
        }
        let archived = try FileManager.default.contentsOfDirectory(atPath: installer.archive).sorted()
        #expect(archived == ["kay@example.com.1796472000-2.key", "kay@example.com.1796472000-2.pem",
                             "kay@example.com.1796472000-3.key", "kay@example.com.1796472000-3.pem",
                             "kay@example.com.1796472000.key", "kay@example.com.1796472000.pem"])
        let keys = try archived.filter { $0.hasSuffix(".key") }.map {
            try String(contentsOfFile: "\(installer.archive)/\($0)", encoding: .utf8)
        }
        #expect(Set(keys) == ["not a key 1\n", "not a key 2\n", "not a key 3\n"])
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/kay@example.com.key"))
    }
}
