// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import Policy

/// The example files in conf/ are documentation: these tests keep them valid and complete.
@Suite("Example configuration in conf/")
struct ExampleConfigurationTests {
    private let confDirectory = repositoryRoot.appendingPathComponent("conf").path

    /// The example's text with its /etc/smime-milter/ paths pointing at conf/ in this checkout.
    private func adjustedExample() throws -> String {
        let text = try String(contentsOfFile: confDirectory + "/smime-milter.conf", encoding: .utf8)
        #expect(text.contains("/etc/smime-milter/"))
        return text.replacingOccurrences(of: "/etc/smime-milter/", with: confDirectory + "/")
    }

    @Test func exampleConfigurationParses() throws {
        let config = try ConfigurationParser.parse(contents: try adjustedExample(),
                                                   file: confDirectory + "/smime-milter.conf")
        #expect(config.process.socket == .default)
        #expect(config.certificateDir == confDirectory + "/certs")
        let table = try #require(config.signingTable)
        #expect(!table.rules.isEmpty)
        let map = try #require(config.senderMap)
        #expect(!map.entries.isEmpty)
    }

    @Test func exampleDocumentsEveryKey() throws {
        let lines = try adjustedExample().split(whereSeparator: \.isNewline)
        for key in ConfigurationKey.all {
            let setOrShown = lines.contains { line in
                let text = line.hasPrefix("#") ? line.dropFirst() : line[...]
                return text.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init) == key.name
            }
            #expect(setOrShown, "conf/smime-milter.conf does not show \(key.name)")
            #expect(lines.contains { $0.hasPrefix("## \(key.name):") }, "conf/smime-milter.conf does not explain \(key.name)")
        }
    }

    /// Every commented-out example setting (`#Key value`) must be valid on its own too.
    @Test func commentedOutExamplesAreValid() throws {
        let lines = try adjustedExample().split(whereSeparator: \.isNewline)
        var checked = 0
        for line in lines where line.hasPrefix("#") && !line.hasPrefix("# ") && !line.hasPrefix("##") {
            let setting = String(line.dropFirst())
            guard let name = setting.split(separator: " ").first, ConfigurationKey.named(name) != nil else { continue }
            do {
                _ = try ConfigurationParser.parse(contents: setting + "\nCertificateDir certs\n",
                                                  file: confDirectory + "/smime-milter.conf")
                checked += 1
            } catch {
                Issue.record("commented example \(quoted(setting)) is invalid: \(error)")
            }
        }
        #expect(checked >= 5)
    }

    @Test func exampleSigningTableMeansWhatItsCommentsSay() throws {
        let table = try SigningTable.load(path: confDirectory + "/signing.table")
        #expect(table.lookup("news@example.com") == .skip)
        #expect(table.lookup("alice@example.com") == .sign(identity: "alice", form: .opaque))
        #expect(table.match("alice@example.com")?.options.onBrokenSignature == .strip)
        #expect(table.match("bob@example.com")?.options.onBrokenSignature == nil)
        #expect(table.lookup("bob@example.com") == .sign(identity: "example-org", form: .detached))
        #expect(table.lookup("bob@lab.example.com") == .sign(identity: "example-org", form: .detached))
        #expect(table.lookup("bob@example.org") == nil)
    }

    @Test func exampleSenderMapMeansWhatItsCommentsSay() throws {
        let map = try SenderMap.load(path: confDirectory + "/sender.map")
        #expect(map.allows(login: "assistant", address: "ceo@example.com"))
        #expect(map.allows(envelopeSender: "bounces@example.com", address: "ceo@example.com"))
        #expect(map.allows(login: "bob", address: "support@example.com"))
        #expect(!map.allows(login: "bob", address: "alice@example.com"))
        #expect(map.allows(envelopeSender: "www-data@example.com", address: "info@example.com"))
    }

    @Test func exampleInternalHostsFile() throws {
        let hosts = try NetworkList.load(path: confDirectory + "/internal-hosts")
        #expect(hosts.contains("192.0.2.10"))
        #expect(!hosts.contains("192.0.2.66"))
        #expect(hosts.contains("2001:db8:1:2::3"))
        #expect(hosts.contains("127.0.0.1"))
    }
}
