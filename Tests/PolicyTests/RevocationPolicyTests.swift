// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Testing
@testable import Policy
import SMIME

/// `OnRevocationUnknown` and the revocation keys (the checks themselves are in SMIMETests and
/// Tests/integration/test_revocation.py).
@Suite("Revocation policy")
struct RevocationPolicyTests {
    static var unknownPass: VerificationReport {
        var report = Reports.pass
        report.revocation = ChainRevocation(certificates: [CertificateRevocation(
            subject: "CN=alice", depth: 0, status: .unknown("no answer within 5 s"), source: "ocsp http://127.0.0.1:9/")])
        return report
    }

    func outcome(_ action: RevocationUnknownAction) -> PolicyOutcome {
        var configuration = verificationConfiguration()
        configuration.onRevocationUnknown = action
        return VerificationPolicy(configuration: configuration, verifier: StubVerifier(report: Self.unknownPass))
            .evaluate(inboundMessage())
    }

    @Test func acceptKeepsThePassAndSaysSo() {
        let out = outcome(.accept)
        #expect(out.action == .accept)
        #expect(out.decision == .verified(result: .pass, reason: nil))
        #expect(out.details.contains { $0.0 == "note" && $0.1.contains("revocation status unknown: no answer within 5 s") })
    }

    @Test func policyGivesSmimePolicy() {
        let out = outcome(.policy)
        guard case let .verified(result, reason) = out.decision else { Issue.record("\(out.decision)"); return }
        #expect(result == .policy)
        #expect(reason?.hasPrefix("revocation status unknown") == true)
    }

    @Test func tempfailGoesThroughFailureRules() {
        let out = outcome(.tempfail)
        #expect(out.edits.isEmpty)
        guard case let .tempfail(code, xcode, text) = out.action else { Issue.record("\(out.action)"); return }
        #expect(code == "451" && xcode == "4.7.5")
        #expect(text.contains("try again later"))
    }

    @Test func revokedIsNotTouchedByTheUnknownRule() {
        var report = Reports.fail
        report.reason = "certificate revoked: keyCompromise, 2026-12-03T00:00:00Z; crl http://127.0.0.1:9/x.crl"
        var configuration = verificationConfiguration()
        configuration.onRevocationUnknown = .tempfail
        let out = VerificationPolicy(configuration: configuration, verifier: StubVerifier(report: report)).evaluate(inboundMessage())
        #expect(out.action == .accept)
        let ar = out.edits.compactMap { edit -> String? in
            if case let .insertField(_, name, value) = edit, name == "Authentication-Results" { return value }
            return nil
        }.first ?? ""
        #expect(ar.contains("smime=fail (certificate revoked: keyCompromise, 2026-12-03T00:00:00Z;"))
    }

    @Test func keysParse() throws {
        let text = "Mode v\nRevocationCheck ocsp, crl\nRevocationTimeout 7\nOnRevocationUnknown policy\nHTTPProxy proxy.example:3128\n"
        let configuration = try ConfigurationParser.parse(contents: text, file: "test.conf")
        #expect(configuration.revocation.methods == [.ocsp, .crl])
        #expect(configuration.revocation.timeout == 7)
        #expect(configuration.onRevocationUnknown == .policy)
        #expect(configuration.revocation.proxy == "http://proxy.example:3128")
        for bad in ["RevocationCheck ocsp,ocsp", "RevocationCheck https", "RevocationTimeout 0",
                    "HTTPProxy user:pw@proxy:3128", "HTTPProxy proxy"] {
            #expect(throws: ConfigurationError.self) { try ConfigurationParser.parse(contents: "Mode v\n" + bad + "\n", file: "t") }
        }
        #expect(Configuration().revocation.methods.isEmpty)
        // The same file without the bad line parses: the errors above are the revocation keys'.
        _ = try ConfigurationParser.parse(contents: "Mode v\nRevocationCheck none\n", file: "t")
    }
}
