// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import Policy

/// `ConfigurationParser.review`: every error of a file at once, and the rules on who can reach
/// the milter's socket.
@Suite("Configuration review for serving")
struct ServingRulesTests {
    private func review(_ text: String) -> ConfigurationReview {
        ConfigurationParser.review(contents: text + "\nCertificateDir /nonexistent/certs\n", file: "t.conf")
    }

    @Test func everyErrorIsReportedWithItsLine() {
        let result = review("""
            Socket tcp:25
            Mode x
            # a comment
            Digest md5
            Bogus 1
            Mode s
            """)
        #expect(result.errors.map(\.line) == [1, 2, 4, 5, 6])
        #expect(result.errors.map(\.description).allSatisfy { $0.hasPrefix("t.conf:") })
        #expect(result.errors[3].message.contains("unknown key"))
        #expect(result.errors[4].message.contains("duplicate key Mode"))
        // parse still throws the first one.
        let first = configurationError { try parseConfig("Socket tcp:25\nMode x") }
        #expect(first?.line == 1)
    }

    @Test func aConsistencyRuleIsNotReportedWhenItsKeyIsAlreadyWrong() {
        let result = ConfigurationParser.review(contents: "Mode q\nDigest md5\n", file: "t.conf")
        #expect(result.errors.map(\.line) == [1, 2])
        let missing = ConfigurationParser.review(contents: "Mode s\nDigest md5\n", file: "t.conf")
        #expect(missing.errors.map(\.line) == [2, 1])
        #expect(missing.errors[1].message.contains("CertificateDir is required"))
    }

    @Test(arguments: ["inet:8891", "inet:8891@0.0.0.0", "inet6:8891@[::]", "inet6:8891", "inet:8891@192.0.2.7", "inet6:8891@[2001:db8::7]"])
    func wildcardOrNonLoopbackBindNeedsAllowedPeers(socket: String) throws {
        let refused = review("Socket \(socket)")
        #expect(refused.errors.count == 1)
        let error = try #require(refused.errors.first)
        #expect(error.line == 1)
        #expect(error.message.contains("AllowedPeers is not set"))
        #expect(error.message.contains("AllowedPeers 192.0.2.25"))
        #expect(error.message.contains("AllowedPeers any"))
        #expect(review("Socket \(socket)\nAllowedPeers 192.0.2.25, 2001:db8::25").errors.isEmpty)
        let any = review("Socket \(socket)\nAllowedPeers any")
        #expect(any.errors.isEmpty)
        #expect(any.warnings.contains { $0.hasPrefix("AllowedPeers any:") })
    }

    @Test(arguments: ["inet:8891@127.0.0.1", "inet:8891@127.0.0.2", "inet:8891@localhost", "inet6:8891@[::1]", "inet6:8891@[::ffff:127.0.0.1]"])
    func loopbackBindNeedsNothing(socket: String) throws {
        let result = review("Socket \(socket)")
        #expect(result.errors.isEmpty && result.warnings.isEmpty, "\(result.errors) \(result.warnings)")
        #expect(result.configuration.process.allowedPeers == nil)
        #expect(result.configuration.process.effectiveAllowedPeers == .loopbackNetworks)
    }

    @Test func allowedPeersForms() throws {
        #expect(try parseConfig("AllowedPeers any").process.allowedPeers == .any)
        #expect(try parseConfig("AllowedPeers ANY").process.effectiveAllowedPeers == nil)
        let list = try #require(try parseConfig("AllowedPeers 192.0.2.25, !192.0.2.0/24, ::ffff:10.0.0.1").process.effectiveAllowedPeers)
        #expect(list.contains("192.0.2.25") && list.contains("10.0.0.1") && !list.contains("192.0.2.26") && !list.contains("127.0.0.1"))
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.write("peers", "# the MTAs\n192.0.2.25\n2001:db8::25 # backup\n")
        let fromFile = try parseConfig("AllowedPeers \(file)")
        #expect(fromFile.process.effectiveAllowedPeers?.entries.count == 2)
        #expect(fromFile.process.allowedPeers?.description == file)
        let bad = try directory.write("bad", "192.0.2.25\nmta.example.com\n")
        let error = configurationError { try parseConfig("AllowedPeers \(bad)") }
        #expect(error?.file == bad && error?.line == 2)
        #expect(configurationError { try parseConfig("AllowedPeers mta.example.com") }?.message.contains("file name must start with") == true)
    }

    @Test func listThatShutsOutTheLocalMTAIsWarned() throws {
        #expect(review("AllowedPeers 192.0.2.25").warnings.contains { $0.contains("neither 127.0.0.1 nor ::1") })
        #expect(review("AllowedPeers 192.0.2.25, ::1").warnings.isEmpty)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let empty = try directory.write("peers", "# nobody yet\n")
        let result = review("Socket inet:8891@0.0.0.0\nAllowedPeers \(empty)")
        #expect(result.errors.isEmpty)
        #expect(result.warnings.contains { $0.contains("has no entries") })
    }

    @Test func unixSocketWritableByOthersIsRefused() throws {
        let refused = review("Socket unix:/run/milter/m.sock\nSocketMode 0666")
        #expect(refused.errors.map(\.line) == [2])
        #expect(refused.errors.first?.message.contains("every local user") == true)
        #expect(review("Socket unix:/run/milter/m.sock\nSocketMode 0664").errors.isEmpty)  // o+r: cannot connect
        #expect(review("Socket unix:/run/milter/m.sock\nSocketMode 0660").errors.isEmpty)
        #expect(review("Socket inet:8891@127.0.0.1\nSocketMode 0666").errors.isEmpty)      // ignored for inet
        let peers = review("Socket unix:/run/milter/m.sock\nAllowedPeers 127.0.0.1")
        #expect(peers.errors.isEmpty && peers.warnings.contains { $0.contains("no effect on a unix socket") })
    }

    @Test func metricsListenDefaultsToLoopbackAndWarnsOtherwise() throws {
        #expect(try parseConfig("MetricsListen 9891").process.metricsListen?.description == "127.0.0.1:9891")
        #expect(review("MetricsListen 9891").warnings.isEmpty)
        #expect(review("MetricsListen [::1]:9891").warnings.isEmpty)
        #expect(review("MetricsListen 0.0.0.0:9891").warnings.contains { $0.contains("every address of this host") })
        #expect(review("MetricsListen [::]:9891").warnings.contains { $0.contains("every address of this host") })
        #expect(review("MetricsListen 192.0.2.7:9891").warnings.contains { $0.contains("non-loopback") })
    }

    @Test func describeShowsAllowedPeersAndParsesBack() throws {
        for text in ["AllowedPeers any\nSocket inet:8891", "AllowedPeers 192.0.2.25, ::1\nSocket inet:8891", "Socket inet:8891@127.0.0.1"] {
            let config = try parseConfig(text)
            let again = try ConfigurationParser.parse(contents: config.describe(), file: "t.conf")
            #expect(again.process.allowedPeers == config.process.allowedPeers)
        }
    }
}
