// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Policy
import SMIME
import Testing

/// Inbound verification of a spooled body (`MessageBody.file`) gives the outcome of the same body
/// in memory: the same decision, Authentication-Results and details. The message is signed by
/// `openssl cms -sign` with the test PKI; the real `MessageVerifier` checks it.
@Suite struct StreamedVerificationPolicyTests {
    let fixture = PolicyFixture.shared

    func signed(_ content: String) throws -> (fields: [HeaderField], body: [UInt8]) {
        let dir = fixture.directory
        let input = "\(dir)/content-\(UUID().uuidString).txt"
        try Data(content.utf8).write(to: URL(fileURLWithPath: input))
        let (status, output) = PolicyFixture.run(["openssl", "cms", "-sign", "-binary", "-in", input,
                                                  "-signer", "\(dir)/pki/certs/alice.pem", "-md", "sha256",
                                                  "-certfile", "\(dir)/pki/intermediate.pem"])
        try #require(status == 0, "openssl cms -sign failed")
        let parsed = try MessageParser.split(LineEnds.toCRLF(Array(output.utf8)))
        return (parsed.fields, parsed.body)
    }

    func message(_ signed: (fields: [HeaderField], body: [UInt8]), body: MessageBody) -> MessageContext {
        var context = inboundMessage(from: "Alice <alice@example.com>", extraFields: signed.fields)
        context.body = body
        return context
    }

    func file(_ bytes: [UInt8]) throws -> MessageBody {
        .file(try BodyFile.scratch(in: NSTemporaryDirectory()) { fd in
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        })
    }

    func policy() throws -> VerificationPolicy {
        let verifier = MessageVerifier(trust: try TrustStore(anchors: [fixture.directory + "/pki/root.pem"]))
        return VerificationPolicy(configuration: verificationConfiguration(mode: [.verify], fail: "[BROKEN]"), verifier: verifier)
    }

    static let content = "Content-Type: text/plain; charset=us-ascii\r\n\r\nHello Bob,\r\nthe figures are 42.\r\n"

    @Test(arguments: [false, true])
    func spooledBodyGivesTheInMemoryOutcome(tampered: Bool) throws {
        var signed = try signed(Self.content)
        if tampered {
            let text = String(decoding: signed.body, as: UTF8.self).replacingOccurrences(of: "are 42.", with: "are 99.")
            signed.body = Array(text.utf8)
        }
        let policy = try policy()
        let now = Date()
        let memory = policy.evaluateReporting(message(signed, body: .memory(signed.body)), now: now)
        let spooled = policy.evaluateReporting(message(signed, body: try file(signed.body)), now: now)
        #expect(memory.outcome.decision == (tampered ? .verified(result: .fail, reason: memory.report?.reason)
                                                     : .verified(result: .pass, reason: nil)))
        #expect(spooled.outcome.decision == memory.outcome.decision)
        #expect(spooled.outcome.edits == memory.outcome.edits)
        #expect(spooled.outcome.details.map { "\($0)=\($1)" } == memory.outcome.details.map { "\($0)=\($1)" })
        #expect(spooled.report == memory.report)
        // The body handed on for the harvest holds the same signature part.
        #expect(spooled.body != nil)
    }
}
