// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
@testable import Policy
import SMIME
import Testing

/// `MaxConnections`, `MilterTimeout`, the inbound parsing and CMS limits, and the reply beyond
/// the connection limit.
@Suite struct LimitsConfigurationTests {
    @Test func limitKeysParseAndRefuseBadValues() throws {
        let defaults = try parseConfig("")
        #expect(defaults.limits.maxConnections == 1000)
        #expect(defaults.limits.milterTimeout == 600)
        let config = try parseConfig("MaxConnections 5\nMilterTimeout 30")
        #expect(config.limits.maxConnections == 5)
        #expect(config.limits.milterTimeout == 30)
        for line in ["MaxConnections 0", "MaxConnections -1", "MaxConnections many", "MaxConnections 100001",
                     "MilterTimeout 0", "MilterTimeout 1m", "MilterTimeout 86401"] {
            #expect(throws: ConfigurationError.self, "\(line) must be refused") { try parseConfig(line) }
        }
    }

    @Test func connectionsBeyondTheLimitTempfail() {
        #expect(FailureRules.connectionLimit(open: 1, limit: 1) == nil)
        #expect(FailureRules.connectionLimit(open: 1000, limit: 1000) == nil)
        guard case .tempfail(let code, let xcode, let text) = FailureRules.connectionLimit(open: 1001, limit: 1000) else {
            Issue.record("expected a tempfail beyond the limit")
            return
        }
        #expect(code == "451")
        #expect(xcode == "4.3.2")
        #expect(text.contains("too many connections"))
    }

    @Test func inboundLimitKeysParseAndRefuseBadValues() throws {
        let defaults = try parseConfig("").verificationOptions()
        #expect(defaults.limits == MIMELimits(maxDepth: 32, maxParts: 1_000, maxHeaderFields: 10_000))
        #expect(defaults.maxCertificates == 50)
        #expect(defaults.maxSigners == 8)
        #expect(defaults.diagnosis == DiagnosisOptions())
        let config = try parseConfig("""
            MaxMIMEDepth 5
            MaxMIMEParts 40
            MaxHeaderFields 300
            MaxSignatureCertificates 7
            MaxSigners 2
            DiagnosisDigestBudget 10
            DiagnosisTimeBudget 1500
            """)
        let options = config.verificationOptions()
        #expect(options.limits == MIMELimits(maxDepth: 5, maxParts: 40, maxHeaderFields: 300))
        #expect(options.maxCertificates == 7)
        #expect(options.maxSigners == 2)
        #expect(options.diagnosis.maxDigestComputations == 10)
        #expect(options.diagnosis.timeBudget == .milliseconds(1500))
        #expect(options.diagnosis.enabled)
        #expect(try !parseConfig("DiagnosisDigestBudget 0").verificationOptions().diagnosis.enabled)
        // The diagnose command's own budget wins over the configured one.
        #expect(config.verificationOptions(diagnosis: DiagnosisOptions(maxDigestComputations: 3)).diagnosis.maxDigestComputations == 3)
        for line in ["MaxMIMEDepth 0", "MaxMIMEDepth 257", "MaxMIMEParts 0", "MaxHeaderFields 10001",
                     "MaxSignatureCertificates 0", "MaxSigners many", "DiagnosisDigestBudget -1",
                     "DiagnosisTimeBudget 0", "DiagnosisTimeBudget 2s"] {
            #expect(throws: ConfigurationError.self, "\(line) must be refused") { try parseConfig(line) }
        }
    }

    /// The configured bounds reach the verifier the milter builds: the same nested message is
    /// parsed under the default depth and refused with the reason under a smaller one.
    @Test func configuredDepthAndPartsBoundTheVerifier() throws {
        func nested(depth: Int) -> [UInt8] {
            var body = "Content-Type: text/plain\r\n\r\nhello\r\n"
            for level in 0..<depth {
                body = "Content-Type: multipart/mixed; boundary=b\(level)\r\n\r\n--b\(level)\r\n\(body)--b\(level)--\r\n"
            }
            return Array(("From: a@example.com\r\nTo: b@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\n" + body).utf8)
        }
        func report(_ text: String, _ message: [UInt8]) throws -> VerificationReport {
            let verifier = MessageVerifier(trust: try TrustStore.empty(), options: try parseConfig(text).verificationOptions())
            let (fields, body) = try MessageParser.split(message)
            return verifier.verify(fields: fields, body: body, fromAddress: "a@example.com", at: Date())
        }
        let six = nested(depth: 6)
        #expect(try report("", six).result == .none)
        let shallow = try report("MaxMIMEDepth 4", six)
        #expect(shallow.result == .neutral)
        #expect((shallow.reason ?? "").contains("nested deeper than 4"))
        let few = try report("MaxMIMEParts 3", six)
        #expect(few.result == .neutral)
        #expect((few.reason ?? "").contains("more than 3 MIME entities"))
    }
}
