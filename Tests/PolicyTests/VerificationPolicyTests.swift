// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Policy
import SMIME
import Testing

/// The decision for inbound mail with a stub verifier: which fields are removed, added and
/// changed, and what the MTA is told.
@Suite struct VerificationPolicyTests {
    func evaluate(_ report: VerificationReport, _ config: Configuration, _ message: MessageContext = inboundMessage()) -> PolicyOutcome {
        VerificationPolicy(configuration: config, verifier: StubVerifier(report: report)).evaluate(message)
    }

    func subject(_ fields: [HeaderField]) -> String? {
        fields.first(named: "Subject")?.value
    }

    @Test func oneAuthenticationResultsFieldAtTheTop() throws {
        let message = inboundMessage()
        let outcome = evaluate(Reports.pass, verificationConfiguration(), message)
        #expect(outcome.decision == .verified(result: .pass, reason: nil))
        #expect(outcome.action == .accept)
        let fields = try delivered(message, outcome)
        #expect(fields.all(named: "Authentication-Results").count == 1)
        #expect(fields.first?.name == "Authentication-Results")
        #expect(fields.first?.value.contains("smime=pass") == true)
        #expect(Array(fields.dropFirst()) == message.fields)
        #expect(outcome.edits.contains { if case .insertField(0, "Authentication-Results", _) = $0 { return true } else { return false } })
    }

    @Test func logDetailsNameTheSigner() throws {
        let outcome = evaluate(Reports.policy, verificationConfiguration())
        #expect(outcome.decision == .verified(result: .policy, reason: Reports.policy.reason))
        #expect(outcome.details.contains { $0.0 == "identifier" && $0.1 == "mallory@example.net" })
        #expect(outcome.fromAddress == "alice@example.com")
    }

    @Test func forgedFieldsWithOurAuthservIDAreRemovedOthersKept() throws {
        let message = inboundMessage(extraFields: [
            HeaderField(name: "Authentication-Results", value: " mx.example.net; smime=pass body.smime-identifier=ceo@example.net"),
            HeaderField(name: "Authentication-Results", value: " relay.example.org; spf=pass smtp.mailfrom=example.com"),
            HeaderField(name: "authentication-results", value: "\n\t(forged) MX.EXAMPLE.NET 1; dkim=pass"),
            HeaderField(name: "Authentication-Results", value: " mx.example.net.evil.example; smime=pass"),
        ])
        let outcome = evaluate(Reports.fail, verificationConfiguration(), message)
        #expect(outcome.edits.contains(.deleteField(name: "Authentication-Results", occurrence: 1)))
        #expect(outcome.edits.contains(.deleteField(name: "Authentication-Results", occurrence: 3)))
        let fields = try delivered(message, outcome)
        let results = fields.all(named: "Authentication-Results").map(\.value)
        #expect(results.count == 3)
        #expect(results[0].contains("smime=fail"))
        #expect(results[1] == " relay.example.org; spf=pass smtp.mailfrom=example.com")
        #expect(results[2] == " mx.example.net.evil.example; smime=pass")
        #expect(!fields.contains { $0.value.contains("ceo@example.net") || $0.value.contains("(forged)") })
        // Deletions are listed last occurrence first.
        let deletions = outcome.edits.compactMap { edit -> Int? in
            if case let .deleteField(_, n) = edit { return n } else { return nil }
        }
        #expect(deletions == [3, 1])
    }

    @Test func tagsByResult() throws {
        let config = verificationConfiguration(pass: "[signed]", fail: "[SIGNATURE BROKEN]", none: "[unsigned]")
        let cases: [(VerificationReport, String)] = [
            (Reports.pass, " [signed] Quarterly report"),
            (Reports.fail, " [SIGNATURE BROKEN] Quarterly report"),
            (Reports.policy, " [SIGNATURE BROKEN] Quarterly report"),
            (Reports.neutral, " [SIGNATURE BROKEN] Quarterly report"),
            (Reports.permerror, " [SIGNATURE BROKEN] Quarterly report"),
            (Reports.unsigned, " [unsigned] Quarterly report"),
            (Reports.temperror, " Quarterly report"),
            (Reports.encrypted, " Quarterly report"),
        ]
        for (report, expected) in cases {
            let message = inboundMessage()
            #expect(subject(try delivered(message, evaluate(report, config, message))) == expected, "\(report.result)")
        }
    }

    @Test func noTagsByDefault() throws {
        let message = inboundMessage()
        for report in [Reports.pass, Reports.fail, Reports.unsigned] {
            let outcome = evaluate(report, verificationConfiguration(), message)
            #expect(outcome.edits.count == 1, "only the Authentication-Results field")
            #expect(subject(try delivered(message, outcome)) == " Quarterly report")
        }
    }

    @Test func japaneseSubjectIsTaggedBeforeTheEncodedWord() throws {
        let message = inboundMessage(subject: " =?ISO-2022-JP?B?GyRCMnE1RCROO3FOQRsoQg==?=")
        let outcome = evaluate(Reports.pass, verificationConfiguration(pass: "[signed]"), message)
        #expect(outcome.edits.contains(.changeField(name: "Subject", occurrence: 1, value: " [signed] =?ISO-2022-JP?B?GyRCMnE1RCROO3FOQRsoQg==?=")))
        #expect(EncodedWord.decode(subject(try delivered(message, outcome)) ?? "") == " [signed] 会議の資料")
    }

    @Test func alreadyTaggedSubjectIsNotTaggedAgain() throws {
        let message = inboundMessage(subject: " [signed] Quarterly report")
        let outcome = evaluate(Reports.pass, verificationConfiguration(pass: "[signed]"), message)
        #expect(!outcome.edits.contains { if case .changeField = $0 { return true } else { return false } })
    }

    @Test func forgedPassTagIsRemovedWhenNotPass() throws {
        let message = inboundMessage(subject: " [signed] Pay this invoice")
        let unsigned = evaluate(Reports.unsigned, verificationConfiguration(pass: "[signed]"), message)
        #expect(subject(try delivered(message, unsigned)) == " Pay this invoice")
        let failed = evaluate(Reports.fail, verificationConfiguration(pass: "[signed]", fail: "[BROKEN]"), message)
        #expect(subject(try delivered(message, failed)) == " [BROKEN] Pay this invoice")
    }

    @Test func missingSubjectGetsOneOnlyWhenATagApplies() throws {
        let message = inboundMessage(subject: nil)
        let tagged = try delivered(message, evaluate(Reports.unsigned, verificationConfiguration(none: "[unsigned]"), message))
        #expect(subject(tagged) == " [unsigned]")
        let untagged = try delivered(message, evaluate(Reports.pass, verificationConfiguration(none: "[unsigned]"), message))
        #expect(untagged.first(named: "Subject") == nil)
    }

    @Test func eightBitSubjectIsNotRewritten() throws {
        var message = inboundMessage(subject: nil)
        message.fields.append(HeaderField(name: "Subject", rawValue: Array(" Gr\u{FC}\u{DF}e".unicodeScalars.map { UInt8($0.value) })))
        let outcome = evaluate(Reports.unsigned, verificationConfiguration(none: "[unsigned]"), message)
        #expect(!outcome.edits.contains { if case .changeField = $0 { return true } else { return false } })
        #expect(outcome.details.contains { $0.0 == "tag" })
    }

    // MARK: RequireSignature

    @Test func requiredExactAddressAndDomain() throws {
        let list = RequiredSigners(file: "f", addresses: ["alerts@bank.example"], domains: ["ministry.example"])
        #expect(list.requires("alerts@bank.example"))
        #expect(list.requires("<Alerts@BANK.example>"))
        #expect(!list.requires("other@bank.example"))
        #expect(list.requires("anyone@ministry.example"))
        #expect(list.requires("x@MINISTRY.EXAMPLE"))
        #expect(!list.requires("x@sub.ministry.example"))
        #expect(!list.requires("x@ministry.example.evil"))
        #expect(list.entry(for: "x@ministry.example") == "@ministry.example")
        #expect(list.entry(for: "alerts@bank.example") == "alerts@bank.example")
    }

    @Test func requiredSenderWithoutSignatureIsTagged() throws {
        let message = inboundMessage(from: "Bank <alerts@bank.example>")
        let config = verificationConfiguration(fail: "[FAKE?]", required: ["@bank.example"], onMissing: .tag)
        let outcome = evaluate(Reports.unsigned, config, message)
        #expect(outcome.action == .accept)
        let fields = try delivered(message, outcome)
        #expect(subject(fields) == " [FAKE?] Quarterly report")
        #expect(fields.first?.value.contains("smime=none") == true)
        #expect(outcome.details.contains { $0.0 == "required" && $0.1 == "@bank.example" })
    }

    @Test func requiredTagDefaultsWhenFailTagIsEmpty() throws {
        let message = inboundMessage(from: "alerts@bank.example")
        let config = verificationConfiguration(none: "[unsigned]", required: ["alerts@bank.example"])
        let fields = try delivered(message, evaluate(Reports.unsigned, config, message))
        #expect(subject(fields) == " [UNVERIFIED] Quarterly report")
        // The same sender with a passing signature is not touched.
        let passed = try delivered(message, evaluate(Reports.pass, config, message))
        #expect(subject(passed) == " Quarterly report")
    }

    @Test func requiredSenderQuarantined() throws {
        let message = inboundMessage(from: "alerts@bank.example")
        let config = verificationConfiguration(required: ["@bank.example"], onMissing: .quarantine)
        let outcome = evaluate(Reports.fail, config, message)
        guard case let .quarantine(reason) = outcome.action else {
            Issue.record("expected quarantine, got \(outcome.action)")
            return
        }
        #expect(reason.contains("bank.example"))
        #expect(reason.contains("smime=fail"))
        #expect(try delivered(message, outcome).first?.name == "Authentication-Results")
    }

    @Test func requiredSenderRejected() throws {
        let message = inboundMessage(from: "alerts@bank.example")
        let config = verificationConfiguration(required: ["@bank.example"], onMissing: .reject)
        let outcome = evaluate(Reports.unsigned, config, message)
        guard case let .reject(code, xcode, text) = outcome.action else {
            Issue.record("expected reject, got \(outcome.action)")
            return
        }
        #expect(code == "550")
        #expect(xcode == "5.7.1")
        #expect(text.contains("bank.example"))
        #expect(text.contains("not signed"))
        #expect(text.unicodeScalars.allSatisfy { (" "..."~").contains($0) })
        #expect(outcome.edits.isEmpty)
        // A transient problem is not a permanent refusal.
        let temporary = evaluate(Reports.temperror, config, message)
        guard case let .tempfail(code, xcode, reason) = temporary.action else {
            Issue.record("expected tempfail for temperror, got \(temporary.action)")
            return
        }
        // As documented: 451 4.7.5 with the same text as the refusal.
        #expect((code, xcode) == ("451", "4.7.5"))
        #expect(reason.contains("S/MIME signature required"))
    }

    @Test func requiredSenderAccepted() throws {
        let message = inboundMessage(from: "alerts@bank.example")
        let config = verificationConfiguration(required: ["@bank.example"], onMissing: .accept)
        let outcome = evaluate(Reports.unsigned, config, message)
        #expect(outcome.action == .accept)
        let fields = try delivered(message, outcome)
        #expect(subject(fields) == " Quarterly report")
        #expect(fields.first?.value.contains("smime=none") == true)
    }

    @Test func notRequiredSenderIsNeverRejected() throws {
        let message = inboundMessage(from: "someone@elsewhere.example")
        let config = verificationConfiguration(required: ["@bank.example"], onMissing: .reject)
        #expect(evaluate(Reports.unsigned, config, message).action == .accept)
    }

    @Test func anotherFromAddressDoesNotEscapeTheRule() throws {
        let message = inboundMessage(from: "friend@elsewhere.example, alerts@bank.example")
        let config = verificationConfiguration(required: ["@bank.example"], onMissing: .reject)
        guard case .reject = evaluate(Reports.unsigned, config, message).action else {
            Issue.record("a listed address among several From addresses must be enforced")
            return
        }
    }

    @Test func encryptedMailFromRequiredSenderIsEnforced() throws {
        let message = inboundMessage(from: "alerts@bank.example")
        let config = verificationConfiguration(required: ["@bank.example"], onMissing: .reject)
        guard case let .reject(_, _, text) = evaluate(Reports.encrypted, config, message).action else {
            Issue.record("expected reject")
            return
        }
        #expect(text.contains("encrypted"))
    }

    // MARK: signer and From

    @Test func passWithSeveralFromAddressesNeedsAllInTheCertificate() throws {
        let message = inboundMessage(from: "ceo@example.com, alice@example.com")
        let outcome = evaluate(Reports.pass, verificationConfiguration(), message)
        guard case let .verified(result, reason) = outcome.decision else {
            Issue.record("expected verified, got \(outcome.decision)")
            return
        }
        #expect(result == .policy)
        #expect(reason?.contains("ceo@example.com") == true)
        #expect(try delivered(message, outcome).first?.value.contains("smime=policy") == true)
        var both = Reports.pass
        both.signerAddresses = ["alice@example.com", "ceo@example.com"]
        #expect(evaluate(both, verificationConfiguration(), message).decision == .verified(result: .pass, reason: nil))
    }

    @Test func passWithoutFromIsPolicy() throws {
        let message = inboundMessage(from: "undisclosed-recipients:;")
        let outcome = evaluate(Reports.pass, verificationConfiguration(), message)
        #expect(outcome.decision == .verified(result: .policy, reason: "the From field is malformed (no address)"))
        let none = MessageContext(connection: ConnectionInfo(clientAddress: "192.0.2.7"), envelopeSender: "<>",
                                  fields: inboundMessage().fields.filter { !$0.hasName("From") }, body: [])
        #expect(evaluate(Reports.pass, verificationConfiguration(), none).decision
                == .verified(result: .policy, reason: "the message has no From address to compare the signer with"))
    }
}
