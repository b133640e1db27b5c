// SPDX-License-Identifier: Apache-2.0
import MIME
import Testing
@testable import Policy

/// The From rules on their own: which From fields a signature can vouch for.
@Suite struct FromFieldTests {
    func check(_ values: [String]) -> FromField {
        FromField.of(values.map { HeaderField(name: "From", value: " " + $0) })
    }

    @Test func plainMailboxesAreFine() {
        for value in ["alice@example.com", "Alice <alice@example.com>", "\"Alice (alice@example.com)\" <Alice@Example.COM>",
                      "alice@example.com (Alice)", "=?utf-8?q?Gr=C3=BC=C3=9Fe_Alice?= <alice@example.com>",
                      "Alice Example <alice@example.com>, Bob <bob@example.com>"] {
            let from = check([value])
            #expect(from.problem == nil, "\(value): \(from.problem ?? "")")
        }
        #expect(check(["Alice <alice@example.com>"]).single == "alice@example.com")
        #expect(check(["alice@example.com, bob@example.com"]).single == nil)
    }

    @Test func displayNamesShowingAnotherAddressAreRefused() {
        // Unquoted, it does not even parse: refused as malformed.
        #expect(check(["ceo@example.com <alice@example.com>"]).problem?.contains("malformed") == true)
        for value in ["\"ceo@example.com\" <alice@example.com>",
                      "=?utf-8?q?ceo=40example=2Ecom?= <alice@example.com>", "\"ceo＠example.com\" <alice@example.com>",
                      "alice@example.com (ceo@example.com)", "\"CEO <ceo@example.com>\" <alice@example.com>"] {
            #expect(check([value]).problem == FromField.displayNameReason, "\(value)")
        }
    }

    @Test func malformedFromNeverVouches() {
        #expect(check(["alice@example.com", "ceo@example.com"]).problem == "the message has 2 From fields")
        #expect(check(["undisclosed-recipients:;"]).problem == "the From field is malformed (no address)")
        #expect(check(["Board: alice@example.com;"]).problem == "the From field is malformed (group syntax)")
        #expect(check(["=?utf-8?q?ceo?=@example.com"]).problem?.contains("encoded word") == true)
        #expect(check(["<<<"]).problem?.contains("malformed") == true)
        #expect(FromField.of([]).problem == "the message has no From address to compare the signer with")
    }

    @Test func theNewKeysParse() throws {
        let configuration = try parseConfig("SubjectTagPartial [partly signed]\nPartialSignatures pass\nHeaderProtection yes\n")
        #expect(configuration.subjectTagPartial == "[partly signed]")
        #expect(configuration.partialSignatures == .pass)
        #expect(configuration.headerProtection)
        #expect(configuration.verificationOptions().partialSignatures == .pass)
        let defaults = try parseConfig("")
        #expect(defaults.partialSignatures == .policy && !defaults.headerProtection && defaults.subjectTagPartial.isEmpty)
        #expect(configurationError { try parseConfig("PartialSignatures maybe\n") } != nil)
    }
}
