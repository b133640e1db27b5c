// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Policy
import SMIME
import Testing

/// `HeaderProtection yes` end to end without an MTA: SigningPolicy signs with hp="clear",
/// `openssl cms -verify` accepts it, and our inbound verdict reads the protected fields back.
@Suite struct OutboundHeaderProtectionTests {
    let fixture = PolicyFixture.shared

    func outbound() -> MessageContext {
        MessageContext(
            connection: ConnectionInfo(clientAddress: "127.0.0.1"), envelopeSender: "<alice@example.com>",
            fields: [
                HeaderField(name: "From", value: " Alice <alice@example.com>"),
                HeaderField(name: "To", value: " bob@example.org"),
                HeaderField(name: "Subject", value: " Quarterly report"),
                HeaderField(name: "Date", value: " Mon, 23 Nov 2026 10:00:00 +0000"),
                HeaderField(name: "Message-ID", value: " <hp@example.com>"),
                HeaderField(name: "MIME-Version", value: " 1.0"),
                HeaderField(name: "Content-Type", value: " text/plain; charset=utf-8"),
            ],
            body: Array("Grüße, the report.\r\n".utf8))
    }

    @Test(arguments: ["detached", "opaque"])
    func signedWithHeaderProtectionVerifiesAndReadsBack(form: String) throws {
        let policy = try fixture.policy(table: "alice@example.com alice \(form)\n", extra: "HeaderProtection yes")
        let message = outbound()
        let outcome = policy.evaluate(message)
        #expect(outcome.decision == .signed(identity: "alice", form: form == "opaque" ? .opaque : .detached))
        let delivered = try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
        let bytes = MessageEditor.serialise(fields: delivered.fields, body: delivered.body)
        let content = try fixture.opensslVerify(bytes)
        #expect(content.hasPrefix("Content-Type: text/plain; charset=utf-8; hp=\"clear\"\r\n"), "\(content)")
        #expect(content.contains("\r\nSubject: Quarterly report\r\n"))

        let verifier = MessageVerifier(trust: try TrustStore(anchors: ["\(fixture.directory)/pki/root.pem"]))
        var configuration = Configuration(authservID: "mx.example.net", subjectTagPass: "[signed]")
        configuration.partialSignatures = .policy
        let inbound = VerificationPolicy(configuration: configuration, verifier: verifier)
        let verdict = inbound.verdict(fields: delivered.fields, body: delivered.body).report
        #expect(verdict.result == .pass, "\(verdict.reason ?? "")")
        #expect(verdict.protectedHeaders?.form == .clear)
        #expect(verdict.note == nil)

        // A relay rewrites the Subject: still a pass, the change is named, the tag goes on the signed one.
        var rewritten = delivered.fields
        let index = try #require(rewritten.firstIndex { $0.hasName("Subject") })
        rewritten[index] = HeaderField(name: "Subject", value: " [EXTERNAL] Quarterly report")
        let context = MessageContext(connection: ConnectionInfo(clientAddress: "192.0.2.7"), envelopeSender: "<alice@example.com>",
                                     fields: rewritten, body: delivered.body)
        let result = inbound.evaluate(context, now: Date())
        let seen = try MessageEditor.apply(result.edits, fields: rewritten, body: delivered.body).fields
        #expect(seen.first(named: "Authentication-Results")?.value.contains("(header protection: the outer Subject differs") == true)
        #expect(seen.first(named: "Subject")?.value == " [signed] Quarterly report")
    }
}
