// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Policy
import SMIME
import Testing

/// Outbound mail already signed by the user's mail client: intact signatures pass
/// untouched, broken ones get OnBrokenSignature. Client signatures are made by
/// `openssl cms -sign` with the test PKI (a signer we did not write); integrity is checked by
/// the real `MessageVerifier` with an empty trust store, as the milter does without TrustAnchors.
@Suite struct BrokenSignatureTests {
    let fixture = PolicyFixture.shared
    static let footer = "-- \r\nExample Corp: this e-mail is confidential.\r\n"
    /// What the verifier's diagnosis says about `withFooter` (the signed messageDigest proves it).
    static let footerCause = "body altered after signing: footer appended to text/plain part (confirmed)"

    /// A real verifier that trusts nothing: integrity only.
    func integrityVerifier() throws -> MessageVerifier {
        MessageVerifier(trust: try TrustStore.empty())
    }

    func policy(table: String? = nil, extra: String = "") throws -> SigningPolicy {
        try fixture.policy(table: table, extra: extra, integrityVerifier: integrityVerifier())
    }

    /// `content` (a MIME entity, CRLF) signed by `openssl cms -sign` as a mail client would:
    /// the S/MIME header fields and body, CRLF.
    func clientSigned(_ content: String, signer: String = "certs/alice.pem", opaque: Bool = false) throws -> (fields: [HeaderField], body: [UInt8]) {
        let dir = fixture.directory
        let input = "\(dir)/content-\(UUID().uuidString).txt"
        try Data(content.utf8).write(to: URL(fileURLWithPath: input))
        var argv = ["openssl", "cms", "-sign", "-in", input, "-signer", "\(dir)/pki/\(signer)", "-md", "sha256",
                    "-certfile", "\(dir)/pki/intermediate.pem"]
        if opaque { argv.append("-nodetach") }
        let (status, output) = PolicyFixture.run(argv)
        try #require(status == 0, "openssl cms -sign failed")
        let parsed = try MessageParser.split(LineEnds.toCRLF(Array(output.utf8)))
        return (parsed.fields, parsed.body)
    }

    static let plainContent = "Content-Type: text/plain; charset=us-ascii\r\n\r\nHello Bob,\r\nthe report is attached.\r\n"

    /// An outbound message (internal host 127.0.0.1 unless `sasl`) with the client-signed entity.
    func message(_ signed: (fields: [HeaderField], body: [UInt8]), from: String = "alice@example.com",
                 sasl: String? = nil) -> MessageContext {
        var fields = [
            HeaderField(name: "Received", value: " from client by mx.example.com"),
            HeaderField(name: "From", value: " <\(from)>"),
            HeaderField(name: "To", value: " bob@example.org"),
            HeaderField(name: "Subject", value: " Quarterly report"),
            HeaderField(name: "Message-ID", value: " <42@example.com>"),
        ]
        fields += signed.fields
        return MessageContext(
            queueID: "TESTQ5", connection: ConnectionInfo(clientAddress: sasl == nil ? "127.0.0.1" : "192.0.2.7"),
            saslLogin: sasl, envelopeSender: "<\(from)>", fields: fields, body: signed.body)
    }

    /// What a disclaimer milter does: a footer appended to the signed text part, in place.
    func withFooter(_ signed: (fields: [HeaderField], body: [UInt8])) throws -> (fields: [HeaderField], body: [UInt8]) {
        let text = String(decoding: signed.body, as: UTF8.self)
        let marker = "the report is attached.\r\n"
        let range = try #require(text.range(of: marker))
        return (signed.fields, Array(text.replacingCharacters(in: range, with: marker + Self.footer).utf8))
    }

    func delivered(_ message: MessageContext, _ outcome: PolicyOutcome) throws -> (fields: [HeaderField], body: [UInt8]) {
        try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
    }

    func contentType(_ fields: [HeaderField]) -> String? {
        fields.first(named: "Content-Type")?.value.trimmingCharacters(in: .whitespaces)
    }

    // MARK: intact

    @Test func intactClientSignaturePassesUntouchedWithoutTrustAnchors() throws {
        let message = message(try clientSigned(Self.plainContent))
        let outcome = try policy().evaluate(message)
        #expect(outcome.decision == .skipped(reason: "already signed, signature intact"))
        #expect(outcome.edits.isEmpty)
        #expect(outcome.report == nil)
    }

    @Test func untrustedChainIsIntactNotBroken() throws {
        // mallory chains to another root: with a trust store holding only our root the verdict
        // is fail (chain), yet the content is what was signed.
        let signed = try clientSigned(Self.plainContent, signer: "other/mallory.pem")
        let trusting = MessageVerifier(trust: try TrustStore(anchors: [fixture.directory + "/pki/root.pem"]))
        let report = trusting.verify(fields: signed.fields, body: signed.body, fromAddress: nil, at: Date())
        #expect(report.result == .fail)
        #expect(report.integrity == .intact)
        let outcome = try fixture.policy(integrityVerifier: trusting).evaluate(message(signed))
        #expect(outcome.decision == .skipped(reason: "already signed, signature intact"))
        #expect(outcome.edits.isEmpty)
    }

    @Test func integrityOfAlteredAndUnsignedMail() throws {
        let verifier = try integrityVerifier()
        let broken = try withFooter(try clientSigned(Self.plainContent))
        let altered = verifier.verify(fields: broken.fields, body: broken.body, fromAddress: nil, at: Date())
        #expect(altered.integrity == .altered)
        #expect(altered.result == .fail)
        let unsigned = verifier.verify(fields: [HeaderField(name: "Content-Type", value: " text/plain")],
                                       body: Array("hi\r\n".utf8), fromAddress: nil, at: Date())
        #expect(unsigned.integrity == .unknown)
    }

    @Test func opaqueClientSignatureIsIntactAndNeverSignedTwice() throws {
        let signed = try clientSigned(Self.plainContent, opaque: true)
        #expect(contentType(signed.fields)?.contains("application/pkcs7-mime") == true)
        let outcome = try policy().evaluate(message(signed))
        #expect(outcome.decision == .skipped(reason: "already signed, signature intact"))
        #expect(outcome.edits.isEmpty)
    }

    @Test func brokenOpaqueSignatureIsKeptAsItIs() throws {
        let signed = try clientSigned(Self.plainContent, opaque: true)
        // Flip one base64 character in the middle of the signed-data.
        var body = signed.body
        let middle = body.count / 2
        let index = try #require(body[middle...].firstIndex { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Y") })
        body[index] += 1
        let outcome = try policy().evaluate(message((signed.fields, body)))
        guard case let .skipped(reason) = outcome.decision else {
            Issue.record("expected skipped, got \(outcome.decision)")
            return
        }
        #expect(reason.hasPrefix("already signed, signature "))
        #expect(outcome.edits.isEmpty)
    }

    @Test func pgpSignedMailIsNotTouched() throws {
        let fields = [
            HeaderField(name: "MIME-Version", value: " 1.0"),
            HeaderField(name: "Content-Type", value: " multipart/signed; protocol=\"application/pgp-signature\"; micalg=pgp-sha256; boundary=\"b\""),
        ]
        let body = "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/pgp-signature\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\n--b--\r\n"
        let outcome = try policy().evaluate(message((fields, Array(body.utf8))))
        guard case let .skipped(reason) = outcome.decision else {
            Issue.record("expected skipped, got \(outcome.decision)")
            return
        }
        #expect(reason.hasPrefix("already signed, signature not checked"))
        #expect(outcome.edits.isEmpty)
    }

    // MARK: broken → resign

    @Test func brokenSignatureIsResignedByDefaultWhenAnIdentityExists() throws {
        let message = message(try withFooter(try clientSigned(Self.plainContent)))
        let policy = try policy()
        #expect(policy.brokenSignatureAction(for: "alice@example.com") == .resign)
        let outcome = policy.evaluate(message)
        #expect(outcome.decision == .signed(identity: "alice", form: .detached))
        #expect(outcome.details.contains { $0 == ("broken_signature", Self.footerCause) })
        #expect(outcome.details.contains { $0 == ("on_broken", "resign") })
        let out = try delivered(message, outcome)
        // Exactly one Content-Type outside: the new multipart/signed; the old layer is gone.
        #expect(out.fields.filter { $0.name.lowercased() == "content-type" }.count == 1)
        #expect(contentType(out.fields)?.hasPrefix("multipart/signed") == true)
        let content = try fixture.opensslVerify(MessageEditor.serialise(fields: out.fields, body: out.body))
        // What is signed now is the old part 1 with the footer, not a signature inside a
        // signature. (The footer's "-- " becomes "--=20": trailing white space is protected
        // for transport before signing.)
        #expect(content.hasPrefix("Content-Type: text/plain; charset=us-ascii\r\n"))
        let body = try #require(content.range(of: "\r\n\r\n")).upperBound
        let decoded = String(decoding: QuotedPrintable.decode(Array(content[body...].utf8)), as: UTF8.self)
        #expect(decoded == "Hello Bob,\r\nthe report is attached.\r\n" + Self.footer)
        #expect(!content.contains("pkcs7-signature"))
        #expect(outcome.report == nil)
    }

    @Test func resignKeepsOuterFieldsAndMultipartContent() throws {
        let alternative = """
            Content-Type: multipart/alternative; boundary="alt"\r
            \r
            --alt\r
            Content-Type: text/plain; charset=us-ascii\r
            \r
            Hello Bob,\r
            the report is attached.\r
            --alt\r
            Content-Type: text/html; charset=us-ascii\r
            \r
            <html><body><p>Hello Bob</p></body></html>\r
            --alt--\r

            """
        let message = message(try withFooter(try clientSigned(alternative)))
        let outcome = try policy().evaluate(message)
        #expect(outcome.decision == .signed(identity: "alice", form: .detached))
        let out = try delivered(message, outcome)
        #expect(Array(out.fields.map(\.name).prefix(5)) == ["Received", "From", "To", "Subject", "Message-ID"])
        let content = try fixture.opensslVerify(MessageEditor.serialise(fields: out.fields, body: out.body))
        #expect(content.hasPrefix("Content-Type: multipart/alternative; boundary=\"alt\""))
        #expect(content.contains("the report is attached.\r\n--=20\r\nExample Corp: this e-mail is confidential.\r\n--alt"))
        #expect(content.contains("<html><body><p>Hello Bob</p></body></html>"))
    }

    @Test func resignNeverSignsForAnAddressTheSubmitterMayNotUse() throws {
        // mallory logs in and sends as alice: the broken signature goes, nothing is signed.
        let message = message(try withFooter(try clientSigned(Self.plainContent)), sasl: "mallory@example.com")
        let outcome = try policy(extra: "BrokenSignatureReport postmaster@example.com").evaluate(message)
        #expect(outcome.decision == .stripped(reason: "original S/MIME signature by alice@example.com removed: " + Self.footerCause))
        #expect(outcome.details.contains { $0 == ("not_resigned", "SASL login mallory@example.com may not use alice@example.com") })
        let out = try delivered(message, outcome)
        #expect(contentType(out.fields) == "text/plain; charset=us-ascii")
        #expect(!String(decoding: out.body, as: UTF8.self).contains("pkcs7"))
        #expect(outcome.report?.text.contains("not signed: SASL login mallory@example.com may not use alice@example.com") == true)
    }

    // MARK: broken → strip

    @Test func brokenSignatureIsStrippedByDefaultWithoutIdentity() throws {
        // dave has no identity: the default is strip.
        let signed = try withFooter(try clientSigned(Self.plainContent))
        let message = message(signed, from: "dave@example.org")
        let policy = try policy(extra: "BrokenSignatureReport postmaster@example.com")
        #expect(policy.brokenSignatureAction(for: "dave@example.org") == .strip)
        let outcome = policy.evaluate(message)
        let warning = "original S/MIME signature by alice@example.com removed: " + Self.footerCause
        #expect(outcome.decision == .stripped(reason: warning))
        let out = try delivered(message, outcome)
        // The content as it is now: part 1's fields on top, its body (with the footer) as body.
        #expect(out.fields.filter { $0.name.lowercased().hasPrefix("content-") }.map(\.name) == ["Content-Type"])
        #expect(contentType(out.fields) == "text/plain; charset=us-ascii")
        #expect(out.fields.first(named: "MIME-Version") != nil)
        #expect(String(decoding: out.body, as: UTF8.self) == "Hello Bob,\r\nthe report is attached.\r\n" + Self.footer)
        // The warning header, folded, printable ASCII.
        let header = try #require(out.fields.first(named: "X-SMIME-Milter"))
        #expect(header.value.replacingOccurrences(of: "\n\t", with: " ") == " " + warning)
        let lines = header.value.split(separator: "\n")
        #expect(lines.count > 1)
        #expect(lines.enumerated().allSatisfy { index, line in line.count + (index == 0 ? 15 : 0) <= 78 })
        // The report.
        let report = try #require(outcome.report)
        #expect(report.recipient == "postmaster@example.com")
        #expect(report.rateKey == "dave@example.org")
        #expect(report.subject.contains("dave@example.org"))
        #expect(report.text.contains("TESTQ5"))
        #expect(report.text.contains("<42@example.com>"))
        #expect(report.text.contains("problem:    " + Self.footerCause))
        // The diagnosis's own words and the footer it found.
        #expect(report.text.contains("footer:     Example Corp: this e-mail is confidential."))
        #expect(report.message.hasPrefix("To: postmaster@example.com\nSubject: "))
    }

    @Test func noReportWithoutBrokenSignatureReport() throws {
        let message = message(try withFooter(try clientSigned(Self.plainContent)), from: "dave@example.org")
        let outcome = try policy().evaluate(message)
        guard case .stripped = outcome.decision else {
            Issue.record("expected stripped, got \(outcome.decision)")
            return
        }
        #expect(outcome.report == nil)
    }

    @Test func globalStripOverridesTheDefaultEvenWithAnIdentity() throws {
        let message = message(try withFooter(try clientSigned(Self.plainContent)))
        let outcome = try policy(extra: "OnBrokenSignature strip").evaluate(message)
        guard case .stripped = outcome.decision else {
            Issue.record("expected stripped, got \(outcome.decision)")
            return
        }
        #expect(try !delivered(message, outcome).fields.contains { $0.value.contains("multipart/signed") })
    }

    // MARK: broken → keep

    @Test func keepLeavesTheBrokenMessageAlone() throws {
        let message = message(try withFooter(try clientSigned(Self.plainContent)))
        let outcome = try policy(extra: "OnBrokenSignature keep").evaluate(message)
        #expect(outcome.decision == .skipped(reason: "already signed, signature broken: \(Self.footerCause); kept (OnBrokenSignature keep)"))
        #expect(outcome.edits.isEmpty)
        #expect(outcome.report == nil)
    }

    // MARK: per-sender option and the default rule

    @Test func signingTableOptionWinsOverTheGlobalKey() throws {
        let policy = try policy(table: """
            alice@example.com   alice detached OnBrokenSignature=strip
            bob@example.com     bob OnBrokenSignature=keep
            noreply@example.com skip OnBrokenSignature=keep
            *@example.com       skip
            """, extra: "OnBrokenSignature resign")
        #expect(policy.brokenSignatureAction(for: "alice@example.com") == .strip)
        #expect(policy.brokenSignatureAction(for: "bob@example.com") == .keep)
        #expect(policy.brokenSignatureAction(for: "noreply@example.com") == .keep)
        // A line without the option falls back to the global key.
        #expect(policy.brokenSignatureAction(for: "other@example.com") == .resign)
        let outcome = policy.evaluate(message(try withFooter(try clientSigned(Self.plainContent))))
        guard case .stripped = outcome.decision else {
            Issue.record("expected stripped (alice's option), got \(outcome.decision)")
            return
        }
    }

    @Test func globalResignWithoutIdentityStrips() throws {
        // The table says skip for everyone at example.org; resign is impossible, so strip.
        let policy = try policy(table: "*@example.org skip\n", extra: "OnBrokenSignature resign")
        #expect(policy.brokenSignatureAction(for: "dave@example.org") == .resign)
        let outcome = policy.evaluate(message(try withFooter(try clientSigned(Self.plainContent)), from: "dave@example.org"))
        guard case .stripped = outcome.decision else {
            Issue.record("expected stripped, got \(outcome.decision)")
            return
        }
        #expect(outcome.details.contains { $0 == ("not_resigned", "SigningTable says skip") })
    }

    @Test func defaultRuleFollowsTheIdentities() throws {
        let policy = try policy(table: "alice@example.com alice\nghost@example.com ghost\n")
        #expect(policy.brokenSignatureAction(for: "alice@example.com") == .resign)
        // A table line naming an identity that is not loaded is no identity.
        #expect(policy.brokenSignatureAction(for: "ghost@example.com") == .strip)
        #expect(policy.brokenSignatureAction(for: "nobody@example.com") == .strip)
    }

    @Test func configurationKeys() throws {
        let config = try parseConfig("OnBrokenSignature Keep\nBrokenSignatureReport postmaster@example.com\n")
        #expect(config.onBrokenSignature == .keep)
        #expect(config.brokenSignatureReport == "postmaster@example.com")
        let defaults = try parseConfig("")
        #expect(defaults.onBrokenSignature == nil)
        #expect(defaults.brokenSignatureReport == nil)
        let bad = configurationError { try parseConfig("OnBrokenSignature sometimes\n") }
        #expect(bad?.line == 1)
        #expect(bad?.message.contains("resign, strip or keep") == true, "got \(bad?.description ?? "no error")")
        let address = configurationError { try parseConfig("BrokenSignatureReport not-an-address\n") }
        #expect(address?.line == 1)
    }
}
