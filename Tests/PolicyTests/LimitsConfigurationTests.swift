// SPDX-License-Identifier: Apache-2.0
@testable import Policy
import Testing

/// `MaxConnections` and `MilterTimeout`, and the reply beyond the connection limit.
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
}
