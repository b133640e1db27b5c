// SPDX-License-Identifier: Apache-2.0
@testable import Policy
import SMIME
import Testing

/// The Authentication-Results value we write (RFC 8601 §2.2, RFC 7281) and the authserv-id we
/// read back from fields already in a message.
@Suite struct AuthenticationResultsTests {
    func unfolded(_ value: String) -> String {
        value.replacingOccurrences(of: "\n\t", with: " ")
    }

    @Test func passHasPropertiesAndNoComment() {
        let value = AuthenticationResults.value(authservID: "mx.example.net", report: Reports.pass)
        #expect(unfolded(value) == " mx.example.net; smime=pass body.smime-identifier=alice@example.com body.smime-part=1")
        #expect(value.hasPrefix(" mx.example.net;\n\tsmime=pass"))
    }

    @Test func everyNonPassResultSaysWhyInAComment() {
        for result in SMIMEResult.allCases where result != .pass && result != .none {
            let report = VerificationReport(result: result, reason: "the \(result.rawValue) reason", identifier: "a@b.example", part: "2")
            let value = unfolded(AuthenticationResults.value(authservID: "mx.example.net", report: report))
            #expect(value == " mx.example.net; smime=\(result.rawValue) (the \(result.rawValue) reason) body.smime-identifier=a@b.example body.smime-part=2")
        }
    }

    @Test func nonPassWithoutReasonGetsPlainWords() {
        let value = unfolded(AuthenticationResults.value(authservID: "h", report: VerificationReport(result: .fail)))
        #expect(value == " h; smime=fail (signature did not verify)")
    }

    @Test func unsignedAndEncryptedAreNone() {
        let unsigned = unfolded(AuthenticationResults.value(authservID: "mx.example.net", report: Reports.unsigned))
        #expect(unsigned == " mx.example.net; smime=none")
        let encrypted = unfolded(AuthenticationResults.value(authservID: "mx.example.net", report: Reports.encrypted))
        #expect(encrypted == " mx.example.net; smime=none (message is encrypted)")
    }

    @Test func serialAndIssuerOnlyTogetherAndQuoted() {
        var report = Reports.pass
        report.serialHex = "1A2B3C"
        report.issuer = "CN=Test \"Intermediate\" CA,O=Example\\Org,C=DE"
        let value = unfolded(AuthenticationResults.value(authservID: "mx.example.net", report: report))
        #expect(value.hasSuffix(#" body.smime-serial=1A2B3C body.smime-issuer="CN=Test \"Intermediate\" CA,O=Example\\Org,C=DE""#))
        report.issuer = nil
        let alone = AuthenticationResults.value(authservID: "mx.example.net", report: report)
        #expect(!alone.contains("smime-serial"))
        #expect(!alone.contains("smime-issuer"))
    }

    @Test func valuesThatAreNoTokenAreQuoted() {
        let report = VerificationReport(
            result: .pass, identifier: "\"odd local\"@example.com", part: "1/2")
        let value = unfolded(AuthenticationResults.value(authservID: "h", report: report))
        #expect(value == #" h; smime=pass body.smime-identifier="\"odd local\"@example.com" body.smime-part="1/2""#)
        // Non-ASCII and control characters never reach the header.
        let hostile = VerificationReport(result: .pass, identifier: "jörg@example.com\r\nX-Evil: 1")
        let text = AuthenticationResults.value(authservID: "h", report: hostile)
        #expect(!text.contains("\r"))
        #expect(text.unicodeScalars.allSatisfy { $0.isASCII })
        #expect(text.contains(#"body.smime-identifier="j?rg@example.com??X-Evil: 1""#))
    }

    @Test func onlyDotAtomAddressesStayUnquoted() {
        for plain in ["alice@example.com", "a.b+c-d@mail.ex-ample.com", "o'brien{x}@e.org", "1@2"] {
            #expect(AuthenticationResults.isPlainAddress(plain), "\(plain)")
            #expect(AuthenticationResults.propertyValue(plain, allowAddress: true) == plain)
        }
        for odd in ["a..b@example.com", ".a@example.com", "a.@example.com", "a@example.", "a@.example",
                    "a@", "@example.com", "a b@example.com", "a@exa_mple.com", "jörg@example.com",
                    "a@b@c", String(repeating: "a", count: 250) + "@example.com"] {
            #expect(!AuthenticationResults.isPlainAddress(odd), "\(odd)")
            #expect(AuthenticationResults.propertyValue(odd, allowAddress: true).hasPrefix("\""))
        }
        #expect(AuthenticationResults.quotedString("a@b@c") == #""a@b@c""#)
        #expect(AuthenticationResults.quotedString(String(repeating: "x", count: 300)).hasSuffix("x...\""))
    }

    @Test func commentIsSanitised() {
        let report = VerificationReport(
            result: .fail, reason: "bad (very) bad) ((\r\n\tX-Injected: yes \\ über  \u{7}end")
        let value = AuthenticationResults.value(authservID: "h", report: report)
        let comment = unfolded(value)
        #expect(comment == " h; smime=fail (bad [very] bad] [[ X-Injected: yes / ?ber end)")
        #expect(!value.contains("\r"))
        // Every line break in the value is a fold we made.
        #expect(value.components(separatedBy: "\n").dropFirst().allSatisfy { $0.hasPrefix("\t") })
    }

    @Test func balancedParenthesesInEveryComment() {
        let nasty = ["(", ")", "((a)", "a))", "\\(", "(\\", ")(", String(repeating: "(", count: 500)]
        for reason in nasty {
            let value = AuthenticationResults.value(authservID: "h", report: VerificationReport(result: .fail, reason: reason))
            var depth = 0
            for c in value {
                if c == "(" { depth += 1 }
                if c == ")" { depth -= 1 }
                #expect(depth >= 0 && depth <= 1, "unbalanced for \(reason)")
            }
            #expect(depth == 0)
        }
    }

    @Test func longCommentsAreFoldedAndBounded() {
        let reason = Array(repeating: "certificate chain could not be built", count: 20).joined(separator: " ")
        let value = AuthenticationResults.value(authservID: "mx.example.net", report: VerificationReport(result: .fail, reason: reason))
        let lines = value.components(separatedBy: "\n")
        #expect(lines.count > 2)
        #expect(lines.allSatisfy { $0.count <= 78 })
        #expect(value.count < 400)
        #expect(value.contains("...)"))
    }

    @Test func authservIDIsParsed() {
        #expect(AuthenticationResults.authservID(of: " mx.example.net; smime=pass") == "mx.example.net")
        #expect(AuthenticationResults.authservID(of: " mx.example.net 1; none") == "mx.example.net")
        #expect(AuthenticationResults.authservID(of: "\n\t(comment (nested) \\) here) MX.Example.NET(x);spf=pass") == "MX.Example.NET")
        #expect(AuthenticationResults.authservID(of: " \"mx.example.net\"; dkim=pass") == "mx.example.net")
        #expect(AuthenticationResults.authservID(of: " \"mx.ex\\\"ample\"; dkim=pass") == "mx.ex\"ample")
        #expect(AuthenticationResults.authservID(of: " (only a comment)") == nil)
        #expect(AuthenticationResults.authservID(of: "") == nil)
        #expect(AuthenticationResults.authservID(of: " \"unterminated") == nil)
        #expect(AuthenticationResults.authservID(of: String(repeating: "(", count: 100_000)) == nil)
    }

    @Test func claimsComparesCaseInsensitivelyAndExactly() {
        #expect(AuthenticationResults.claims(" MX.EXAMPLE.NET; smime=pass", authservID: "mx.example.net"))
        #expect(AuthenticationResults.claims(" mx.example.net 1 ; smime=pass", authservID: "mx.example.net"))
        #expect(!AuthenticationResults.claims(" mx.example.net.evil; smime=pass", authservID: "mx.example.net"))
        #expect(!AuthenticationResults.claims(" other.example; smime=pass (mx.example.net)", authservID: "mx.example.net"))
    }
}
