// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MIME
import Policy
import SMIME
import Testing

/// The signing decision, end to end without an MTA: real configuration files, a real test PKI,
/// real OpenSSL signatures checked by `openssl cms -verify` (a verifier we did not write).
@Suite struct SigningPolicyTests {
    let fixture = PolicyFixture.shared

    func context(
        from: String = "Alice <alice@example.com>", envelope: String = "<alice@example.com>",
        client: String? = "127.0.0.1", sasl: String? = nil, nonSMTP: Bool = false,
        extraFields: [HeaderField] = [], contentFields: [HeaderField]? = nil, body: String = "Hello Bob,\r\nthe report is attached.\r\n"
    ) -> MessageContext {
        var fields = [
            HeaderField(name: "Received", value: " from client by mx.example.com"),
            HeaderField(name: "From", value: " " + from),
            HeaderField(name: "To", value: " bob@example.org"),
            HeaderField(name: "Subject", value: " Quarterly report"),
            HeaderField(name: "Message-ID", value: " <1@example.com>"),
        ]
        fields += extraFields
        fields += contentFields ?? [
            HeaderField(name: "MIME-Version", value: " 1.0"),
            HeaderField(name: "Content-Type", value: " text/plain; charset=utf-8"),
            HeaderField(name: "Content-Transfer-Encoding", value: " 8bit"),
        ]
        return MessageContext(
            queueID: "TESTQ1", connection: ConnectionInfo(clientAddress: client, isNonSMTP: nonSMTP),
            saslLogin: sasl, envelopeSender: envelope, fields: fields, body: Array(body.utf8))
    }

    @Test func internalClientWithMatchingEnvelopeIsSignedAndVerifies() throws {
        let policy = try fixture.policy()
        let message = context(body: "Grüße aus Köln\r\nFrom here on it is 8-bit.\r\n-- \r\nAlice\r\n")
        let outcome = policy.evaluate(message)
        #expect(outcome.decision == .signed(identity: "alice", form: .detached))
        let delivered = try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
        // Outer fields that are not Content-* stay, in order, untouched.
        let names = delivered.fields.map(\.name)
        #expect(Array(names.prefix(6)) == ["Received", "From", "To", "Subject", "Message-ID", "MIME-Version"])
        #expect(!names.contains("Content-Transfer-Encoding"))
        let contentType = try #require(delivered.fields.first { $0.name == "Content-Type" })
        #expect(contentType.value.contains("multipart/signed"))
        #expect(contentType.value.contains("micalg=sha-256"))
        // Everything in the delivered body is 7-bit.
        #expect(delivered.body.allSatisfy { $0 < 0x80 })
        let bytes = MessageEditor.serialise(fields: delivered.fields, body: delivered.body)
        let content = try fixture.opensslVerify(bytes)
        // The decoded content is the original text, now quoted-printable.
        let bodyStart = try #require(content.range(of: "\r\n\r\n")).upperBound
        let decoded = String(decoding: QuotedPrintable.decode(Array(content[bodyStart...].utf8)), as: UTF8.self)
        #expect(decoded == "Grüße aus Köln\r\nFrom here on it is 8-bit.\r\n-- \r\nAlice\r\n")
        #expect(content.contains("Content-Type: text/plain; charset=utf-8"))
    }

    @Test func externalClientIsNotSigned() throws {
        let outcome = try fixture.policy().evaluate(context(client: "192.0.2.7"))
        #expect(outcome.decision == .skipped(reason: "not originating here"))
        #expect(outcome.edits.isEmpty)
    }

    @Test func saslLoginMustMatchFromOrSenderMap() throws {
        let policy = try fixture.policy()
        let own = policy.evaluate(context(client: "192.0.2.7", sasl: "alice@example.com"))
        #expect(own.decision == .signed(identity: "alice", form: .detached))
        let other = policy.evaluate(context(client: "192.0.2.7", sasl: "mallory@example.com"))
        guard case .unauthorised = other.decision else {
            Issue.record("expected unauthorised, got \(other.decision)")
            return
        }
        #expect(other.edits.isEmpty)
        // sender.map lets the login "assistant" use alice's address.
        let delegated = policy.evaluate(context(client: "192.0.2.7", sasl: "assistant"))
        #expect(delegated.decision == .signed(identity: "alice", form: .detached))
    }

    @Test func envelopeSenderMustMatchFromWithoutSASL() throws {
        let policy = try fixture.policy()
        let outcome = policy.evaluate(context(envelope: "<mallory@example.com>"))
        guard case .unauthorised = outcome.decision else {
            Issue.record("expected unauthorised, got \(outcome.decision)")
            return
        }
        let local = policy.evaluate(context(envelope: "alice@example.com", client: nil, nonSMTP: true))
        #expect(local.decision == .signed(identity: "alice", form: .detached))
    }

    @Test func fromFieldProblemsAreNotSigned() throws {
        let policy = try fixture.policy()
        let two = policy.evaluate(context(from: "alice@example.com, bob@example.com"))
        #expect(two.decision == .skipped(reason: "From header field has 2 addresses"))
        let twice = policy.evaluate(context(extraFields: [HeaderField(name: "From", value: " alice@example.com")]))
        #expect(twice.decision == .skipped(reason: "2 From header fields"))
        var none = context()
        none.fields.removeAll { $0.name == "From" }
        #expect(policy.evaluate(none).decision == .skipped(reason: "no From header field"))
    }

    @Test func unknownSenderGoesOutUnsigned() throws {
        let outcome = try fixture.policy().evaluate(
            context(from: "dave@example.org", envelope: "dave@example.org"))
        guard case .skipped = outcome.decision else {
            Issue.record("expected skipped, got \(outcome.decision)")
            return
        }
        #expect(outcome.action == .accept)
    }

    @Test func alreadySignedIsLeftAlone() throws {
        let outcome = try fixture.policy().evaluate(context(contentFields: [
            HeaderField(name: "MIME-Version", value: " 1.0"),
            HeaderField(name: "Content-Type", value: " multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"b\""),
        ], body: "--b\r\n\r\nx\r\n--b--\r\n"))
        // Without an integrity verifier the signature is not looked at, and never signed twice.
        #expect(outcome.decision == .skipped(reason: "already signed (signature not checked)"))
        #expect(outcome.edits.isEmpty)
    }

    @Test func signingTableChoosesIdentityAndForm() throws {
        let policy = try fixture.policy(table: """
            # opaque for bob, skip noreply, domain wildcard to carol
            bob@example.com        bob opaque
            noreply@example.com    skip
            *@sales.example.com    carol
            """)
        let bob = policy.evaluate(context(from: "bob@example.com", envelope: "bob@example.com"))
        #expect(bob.decision == .signed(identity: "bob", form: .opaque))
        let message = context(from: "bob@example.com", envelope: "bob@example.com")
        let delivered = try MessageEditor.apply(bob.edits, fields: message.fields, body: message.body)
        let content = try fixture.opensslVerify(MessageEditor.serialise(fields: delivered.fields, body: delivered.body))
        #expect(content.contains("the report is attached"))
        let skip = policy.evaluate(context(from: "noreply@example.com", envelope: "noreply@example.com"))
        #expect(skip.decision == .skipped(reason: "SigningTable says skip"))
        let carol = policy.evaluate(context(from: "carol@sales.example.com", envelope: "carol@sales.example.com"))
        #expect(carol.decision == .signed(identity: "carol", form: .detached))
        let unlisted = policy.evaluate(context())
        guard case .skipped = unlisted.decision else {
            Issue.record("alice is not in this table; expected skipped, got \(unlisted.decision)")
            return
        }
    }

    /// A spooled body signed opaque streams: the SignedData is written to a scratch file in
    /// SpoolDirectory and the new body is that file in base64, which `openssl cms -verify`
    /// accepts with the converted content inside; the scratch file has no name left behind.
    @Test(arguments: ["7-bit line\r\n", "Gr\u{fc}\u{df}e, 8-bit line\r\n"])
    func aSpooledBodySignedOpaqueStreamsFromAScratchFile(line: String) throws {
        let spool = fixture.directory + "/spool-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: false)
        let policy = try fixture.policy(table: "bob@example.com bob opaque\n", extra: "SpoolDirectory \(spool)")
        var message = context(from: "bob@example.com", envelope: "bob@example.com")
        let text = Array(String(repeating: line, count: 3000).utf8)
        let path = spool + "/body"
        try Data(text).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        message.body = .file(BodyFile(fd: fd, size: text.count))
        let outcome = policy.evaluate(message)
        #expect(outcome.decision == .signed(identity: "bob", form: .opaque))
        let replaced = outcome.edits.compactMap { edit -> MessageBody? in
            if case let .replaceBody(body) = edit { return body }
            return nil
        }
        #expect(replaced.first?.file != nil, "the opaque body should come from a file")
        let delivered = try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
        let serialised = MessageEditor.serialise(fields: delivered.fields, body: delivered.body)
        // Lines of at most 76 characters, each ended by CRLF, as the in-memory opaque body has.
        #expect(delivered.body.suffix(2) == [0x0D, 0x0A])
        let lines = String(decoding: delivered.body, as: UTF8.self).components(separatedBy: "\r\n").dropLast()
        #expect(lines.count > 100 && lines.allSatisfy { $0.count <= 76 && !$0.contains("\n") })
        #expect(lines.dropLast().allSatisfy { $0.count == 76 })
        let content = try fixture.opensslVerify(serialised)
        #expect(content.contains("8-bit line") || content.contains("7-bit line"))
        #expect(content.utf8.count > text.count)
        try FileManager.default.removeItem(atPath: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty)
    }

    @Test func messageWithoutMIMEVersionGetsOne() throws {
        let policy = try fixture.policy()
        let message = context(contentFields: [], body: "plain old text\r\n")
        let outcome = policy.evaluate(message)
        #expect(outcome.decision == .signed(identity: "alice", form: .detached))
        #expect(outcome.edits.contains(.addField(name: "MIME-Version", value: " 1.0")))
        let delivered = try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body)
        let content = try fixture.opensslVerify(MessageEditor.serialise(fields: delivered.fields, body: delivered.body))
        #expect(content.hasSuffix("plain old text\r\n"))
    }
}

/// A test PKI and configuration files in a temporary directory, made once per test process.
final class PolicyFixture: Sendable {
    static let shared = PolicyFixture()

    let directory: String

    init() {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("smime-milter-policy-\(ProcessInfo.processInfo.processIdentifier)").path
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures/make_test_pki.py").path
        _ = PolicyFixture.run(["python3", script, dir + "/pki"])
        directory = dir
    }

    func policy(table: String? = nil, extra: String = "", integrityVerifier: (any SignatureVerifier)? = nil) throws -> SigningPolicy {
        let unique = UUID().uuidString
        var config = """
            Socket inet:8891@127.0.0.1
            Mode sv
            AuthservID test.example
            CertificateDir \(directory)/pki/certs
            SenderMap sender-\(unique).map
            Digest sha256
            """
        try "alice@example.com assistant\n".write(toFile: "\(directory)/sender-\(unique).map", atomically: true, encoding: .utf8)
        if let table {
            try table.write(toFile: "\(directory)/table-\(unique)", atomically: true, encoding: .utf8)
            config += "\nSigningTable table-\(unique)\n"
        }
        config += "\n" + extra + "\n"
        let path = "\(directory)/config-\(unique).conf"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try ConfigurationParser.load(path: path)
        let identities = IdentityStore.load(directory: "\(directory)/pki/certs")
        return SigningPolicy(configuration: configuration, identities: identities, integrityVerifier: integrityVerifier)
    }

    /// Verifies a whole S/MIME message with `openssl cms -verify` and returns the signed content.
    func opensslVerify(_ message: [UInt8]) throws -> String {
        let path = "\(directory)/msg-\(UUID().uuidString).eml"
        try Data(message).write(to: URL(fileURLWithPath: path))
        let (status, output) = PolicyFixture.run([
            "openssl", "cms", "-verify", "-in", path, "-CAfile", "\(directory)/pki/root.pem", "-binary", "-crlfeol",
        ])
        #expect(status == 0, "openssl cms -verify failed: \(output)")
        return output
    }

    @discardableResult
    static func run(_ argv: [String]) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = argv
        let out = Pipe()
        let err = FileHandle(forWritingAtPath: "/dev/null")
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { return (-1, "\(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
