// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import SMIME
import Testing
@testable import Policy

/// Operations keys, certificate lifecycle and OnExpiredCertificate, against a real test PKI.
@Suite struct OperationsTests {
    @Test func operationsKeysParseAndRefuseBadValues() throws {
        let config = try parseConfig("""
            Syslog yes
            SyslogFacility local3
            ExpiryWarnDays 7, 30,1
            ExpiryReport postmaster@example.com
            OnExpiredCertificate tempfail
            MetricsListen [::1]:9891
            """)
        #expect(config.process.syslog)
        #expect(config.process.syslogFacility == .local3)
        #expect(config.expiryWarnDays == [30, 7, 1])
        #expect(config.expiryReport == "postmaster@example.com")
        #expect(config.onExpiredCertificate == .tempfail)
        #expect(config.process.metricsListen == MetricsEndpoint(host: "::1", port: 9891, isIPv6: true))
        #expect(try parseConfig("MetricsListen 127.0.0.1:9891").process.metricsListen?.description == "127.0.0.1:9891")
        let bad = [
            "ExpiryWarnDays 30,x", "ExpiryWarnDays -1", "ExpiryReport not-an-address", "OnExpiredCertificate sign",
            "MetricsListen localhost:9891", "MetricsListen 127.0.0.1", "MetricsListen 127.0.0.1:0", "SyslogFacility kern",
        ]
        for line in bad {
            #expect(throws: ConfigurationError.self, "\(line) must be refused") { try parseConfig(line) }
        }
    }

    @Test func thresholdsPickTheSmallestWindowReached() {
        #expect(CertificateExpiry.threshold(daysLeft: 45, thresholds: [30, 14, 7, 1]) == nil)
        #expect(CertificateExpiry.threshold(daysLeft: 30, thresholds: [30, 14, 7, 1]) == 30)
        #expect(CertificateExpiry.threshold(daysLeft: 5, thresholds: [30, 14, 7, 1]) == 7)
        #expect(CertificateExpiry.threshold(daysLeft: 0, thresholds: [30, 14, 7, 1]) == 1)
        let now = Date()
        #expect(CertificateExpiry.daysLeft(now.addingTimeInterval(36 * 3600), now: now) == 1)
        #expect(CertificateExpiry.daysLeft(now.addingTimeInterval(-3600), now: now) == -1)
    }

    @Test func statusesListValidAndExpiredIdentities() throws {
        let pki = PolicyFixture.shared.directory + "/pki"
        let store = IdentityStore.load(directory: pki + "/expiring")
        #expect(store.identities.map(\.name) == ["soon"])
        #expect(store.expired.map(\.name) == ["lapsed"])
        #expect(store.identity(forAddress: "lapsed@example.com") == nil)
        let config = try parseConfig("ExpiryWarnDays 30,7")
        let statuses = CertificateExpiry.statuses(identities: store, configuration: config)
        let soon = try #require(statuses.first { $0.name == "soon" })
        #expect(soon.daysLeft == 5)
        #expect(soon.usedNow)
        #expect(soon.warningThreshold == 7)
        let lapsed = try #require(statuses.first { $0.name == "lapsed" })
        #expect(!lapsed.usedNow)
        #expect(lapsed.note == "expired")
        #expect(lapsed.daysLeft < 0)
    }

    @Test func expiredCertificateNeverSignsAndFollowsOnExpiredCertificate() throws {
        let pki = PolicyFixture.shared.directory + "/pki"
        let message = MessageContext(
            connection: ConnectionInfo(clientAddress: "127.0.0.1"), envelopeSender: "lapsed@example.com",
            fields: [HeaderField(name: "From", value: " lapsed@example.com"), HeaderField(name: "Subject", value: " x")],
            body: Array("hello\r\n".utf8))
        for (setting, expectTempfail) in [("unsigned", false), ("tempfail", true)] {
            var config = try parseConfig("OnExpiredCertificate \(setting)")
            config.certificateDir = pki + "/expiring"
            let policy = SigningPolicy(configuration: config, identities: IdentityStore.load(directory: pki + "/expiring"))
            let outcome = policy.evaluate(message)
            #expect(outcome.edits.isEmpty)
            guard case let .skipped(reason) = outcome.decision else {
                Issue.record("expected skipped, got \(outcome.decision)")
                continue
            }
            #expect(reason.contains("expired"))
            if expectTempfail {
                guard case .tempfail = outcome.action else {
                    Issue.record("OnExpiredCertificate tempfail must tempfail")
                    continue
                }
            } else {
                #expect(outcome.action == .accept)
            }
        }
    }
}
