// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Policy
import SMIME
import Testing

/// The message-level verdict with the real verifier, on mail made from one genuine signed
/// message of alice's (the test PKI, CMSSigner and `openssl cms -sign`): the spoofed structures
/// of "Johnny, You Are Fired!" and "Composition Kills" never get `smime=pass` or the pass tag,
/// the genuine message still does, and RFC 9788 protected headers are compared.
@Suite("Verdict matrix")
struct VerdictMatrixTests {
    static let passTag = "[signed]"
    static let failTag = "[BROKEN]"

    // MARK: the test PKI and signing

    /// The throw-away PKI (Tests/fixtures/make_test_pki.py), made once.
    static let pki: Result<String, any Error> = Result {
        let directory = FileManager.default.temporaryDirectory.path + "/verdict-pki-" + UUID().uuidString
        let (status, output) = try run("python3", [repositoryRoot.path + "/Tests/fixtures/make_test_pki.py", directory])
        guard status == 0 else { throw MatrixError("make_test_pki.py failed: \(output)") }
        return directory
    }

    struct MatrixError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func verifier(_ options: VerificationOptions = VerificationOptions()) throws -> MessageVerifier {
        MessageVerifier(trust: try TrustStore(anchors: [try pki.get() + "/root.pem"]), options: options)
    }

    static let text = "Content-Type: text/plain; charset=us-ascii\r\n\r\nThe figures are 42.\r\n-- \r\nAlice\r\n"

    /// A multipart/signed part (its Content-Type field, blank line, body) over `entity`, by alice.
    static func signedPart(_ entity: String = text) throws -> String {
        let identity = try IdentityLoader.load(name: "alice", directory: try pki.get() + "/certs")
        let signature = try CMSSigner.sign(content: Array(entity.utf8), identity: identity, digest: .sha256, detached: true)
        let wrapped = try SMIMEWriter.multipartSigned(entity: Array(entity.utf8), signature: signature, digest: .sha256)
        return "Content-Type: " + wrapped.contentType + "\r\n\r\n" + String(decoding: wrapped.body, as: UTF8.self)
    }

    /// `openssl cms -sign` with the given signers (each `-signer FILE`), detached, as a part.
    static func opensslSigned(signers: [String]) throws -> String {
        let directory = try pki.get()
        let input = directory + "/entity-\(UUID().uuidString).txt"
        try Data(text.utf8).write(to: URL(fileURLWithPath: input))
        var arguments = ["cms", "-sign", "-in", input, "-md", "sha256", "-certfile", directory + "/intermediate.pem"]
        for signer in signers { arguments += ["-signer", signer] }
        let (status, output) = try run("openssl", arguments)
        guard status == 0 else { throw MatrixError("openssl cms -sign failed: \(output)") }
        // Drop openssl's own MIME-Version line; keep Content-Type and the body.
        let lines = output.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        return lines.filter { !$0.hasPrefix("MIME-Version:") }.joined(separator: "\r\n")
    }

    /// A multipart/signed whose signature part is a certs-only SignedData (no signer at all).
    static func zeroSigners() throws -> String {
        let directory = try pki.get()
        let (status, output) = try run("openssl", ["crl2pkcs7", "-nocrl", "-certfile", directory + "/certs/alice.pem"])
        guard status == 0 else { throw MatrixError("openssl crl2pkcs7 failed: \(output)") }
        let base64 = output.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined(separator: "\r\n")
        return "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"zs\"\r\n\r\n"
            + "--zs\r\n" + text + "\r\n--zs\r\n"
            + "Content-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64 + "\r\n--zs--\r\n"
    }

    static func head(from: String = "Alice <alice@example.com>", extra: String = "", subject: String = "Quarterly figures") -> String {
        extra + "From: \(from)\r\nTo: bob@example.net\r\nSubject: \(subject)\r\n"
            + "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\n"
    }

    static func multipart(_ type: String, _ parts: [String]) -> String {
        "Content-Type: multipart/\(type); boundary=\"outer-b\"\r\n\r\n"
            + parts.map { "--outer-b\r\n" + $0 + "\r\n" }.joined() + "--outer-b--\r\n"
    }

    static let attackerText = "Content-Type: text/plain; charset=us-ascii\r\n\r\nOur bank account changed, pay to DE00 0000.\r\n"
    static let attackerHTML = "Content-Type: text/html; charset=us-ascii\r\n\r\n<p>Our bank account changed, pay to DE00 0000.</p>\r\n"

    static func context(_ message: String) throws -> MessageContext {
        let (fields, body) = try MessageParser.split(Array(message.utf8))
        return MessageContext(connection: ConnectionInfo(clientAddress: "192.0.2.7"), envelopeSender: "<alice@example.com>",
                              fields: fields, body: body)
    }

    static func configuration(partialTag: String = "", partial: PartialSignatureRule = .policy,
                              required: [String] = []) -> Configuration {
        var configuration = Configuration(
            authservID: "mx.example.net", subjectTagPass: passTag, subjectTagFail: failTag,
            requireSignature: required.isEmpty ? nil : RequiredSigners(
                file: "required", addresses: Set(required.filter { !$0.hasPrefix("@") }),
                domains: Set(required.filter { $0.hasPrefix("@") }.map { String($0.dropFirst()) })))
        configuration.subjectTagPartial = partialTag
        configuration.partialSignatures = partial
        return configuration
    }

    static func policy(_ configuration: Configuration = configuration()) throws -> VerificationPolicy {
        VerificationPolicy(configuration: configuration, verifier: try verifier(configuration.verificationOptions()))
    }

    struct Delivered {
        let result: String
        let subject: String?
        let verdict: VerificationReport
    }

    /// What the recipient gets: our Authentication-Results value and the Subject; checks that
    /// the verdict (what `verify` prints) is the header's result.
    static func deliver(_ message: String, _ policy: VerificationPolicy) throws -> Delivered {
        let context = try context(message)
        let outcome = policy.evaluate(context, now: Date())
        let fields = try MessageEditor.apply(outcome.edits, fields: context.fields, body: context.body).fields
        let header = try #require(fields.first(named: "Authentication-Results")).value
        let verdict = policy.verdict(fields: context.fields, body: try context.body.bytes()).report
        let unfolded = header.replacingOccurrences(of: "\n\t", with: " ")
        #expect(unfolded == " mx.example.net; " + AuthenticationResults.resultText(for: verdict),
                "the header and the verify line differ")
        return Delivered(result: unfolded, subject: fields.first(named: "Subject")?.value, verdict: verdict)
    }

    // MARK: the matrix

    struct Shape: Sendable, CustomStringConvertible {
        let description: String
        let result: SMIMEResult
        let reason: String
        let build: @Sendable () throws -> String
    }

    static let shapes: [Shape] = [
        Shape(description: "multipart/mixed {attacker text, genuine multipart/signed}", result: .policy,
              reason: "only part 2 is signed; unsigned content: part 1 (text/plain) before it") {
            head() + multipart("mixed", [attackerText, try signedPart()])
        },
        Shape(description: "multipart/alternative {signed text, unsigned html}", result: .policy,
              reason: "only part 1 is signed; unsigned content: part 2 (text/html) as an alternative to it") {
            head() + multipart("alternative", [try signedPart(), attackerHTML])
        },
        Shape(description: "display name \"ceo@example.com\" <alice@example.com>", result: .policy,
              reason: "display name shows another address") {
            head(from: "\"ceo@example.com\" <alice@example.com>") + (try signedPart())
        },
        Shape(description: "encoded-word display name hiding ceo@example.com", result: .policy,
              reason: "display name shows another address") {
            head(from: "=?utf-8?q?ceo=40example=2Ecom?= <alice@example.com>") + (try signedPart())
        },
        Shape(description: "two From fields", result: .policy, reason: "the message has 2 From fields") {
            head(extra: "From: ceo@example.com\r\n") + (try signedPart())
        },
        Shape(description: "From with two addresses", result: .policy,
              reason: "the message has 2 From addresses and the signer's certificate does not name ceo@example.com") {
            head(from: "alice@example.com, ceo@example.com") + (try signedPart())
        },
        Shape(description: "From in group syntax", result: .policy, reason: "the From field is malformed (group syntax)") {
            head(from: "Board: alice@example.com;") + (try signedPart())
        },
        Shape(description: "signed part inside message/rfc822 next to unsigned text", result: .none,
              reason: "the message is not signed") {
            head() + multipart("mixed", [attackerText, "Content-Type: message/rfc822\r\n\r\n" + head() + (try signedPart())])
        },
        Shape(description: "signed part after an unsigned HTML part", result: .policy,
              reason: "only part 2 is signed; unsigned content: part 1 (text/html) before it") {
            head() + multipart("mixed", [attackerHTML, try signedPart()])
        },
        Shape(description: "two signers, one does not verify", result: .fail, reason: "untrusted") {
            let directory = try pki.get()
            return head() + (try opensslSigned(signers: [directory + "/certs/alice.pem", directory + "/other/mallory.pem"]))
        },
        Shape(description: "zero signers", result: .permerror, reason: "the signature has no signers") {
            head() + (try zeroSigners())
        },
        Shape(description: "Sender alice, From ceo", result: .policy,
              reason: "signer alice@example.com is not the From address ceo@example.com") {
            head(from: "ceo@example.com", extra: "Sender: alice@example.com\r\n") + (try signedPart())
        },
    ]

    @Test(arguments: shapes)
    func spoofedShapeNeverPasses(shape: Shape) throws {
        let delivered = try Self.deliver(try shape.build(), try Self.policy())
        #expect(delivered.verdict.result == shape.result, "\(delivered.result)")
        #expect(delivered.verdict.reason?.contains(shape.reason) == true, "\(delivered.verdict.reason ?? "")")
        #expect(!delivered.result.contains("smime=pass"))
        #expect(delivered.subject?.contains(Self.passTag) != true, "\(delivered.subject ?? "")")
    }

    @Test func genuineMessagePassesWithTheTag() throws {
        for message in [Self.head() + (try Self.signedPart()),
                        Self.head() + (try Self.opensslSigned(signers: [try Self.pki.get() + "/certs/alice.pem"])),
                        Self.head(from: "\"Alice (alice@example.com)\" <alice@example.com>") + (try Self.signedPart())] {
            let delivered = try Self.deliver(message, try Self.policy())
            #expect(delivered.result.hasPrefix(" mx.example.net; smime=pass body.smime-identifier=alice@example.com"), "\(delivered.result)")
            #expect(delivered.subject == " [signed] Quarterly figures")
        }
    }

    /// A partial signature is not broken: no fail tag, but SubjectTagPartial; for a
    /// RequireSignature sender it is a missing signature; PartialSignatures pass lets it pass.
    @Test func partialSignatureTagsAndRequireSignature() throws {
        let message = Self.head(subject: "\(Self.passTag) bank change") + Self.multipart("mixed", [Self.attackerText, try Self.signedPart()])
        let tagged = try Self.deliver(message, try Self.policy(Self.configuration(partialTag: "[partly signed]")))
        #expect(tagged.subject == " [partly signed] bank change")
        let plain = try Self.deliver(message, try Self.policy())
        #expect(plain.subject == " bank change", "forged pass tag removed, no fail tag")
        let required = try Self.deliver(message, try Self.policy(Self.configuration(required: ["@example.com"])))
        #expect(required.subject == " \(Self.failTag) bank change")
        let accepted = try Self.deliver(message, try Self.policy(Self.configuration(partial: .pass)))
        #expect(accepted.result.contains("smime=pass"))
        #expect(accepted.verdict.part == "2.2")
    }

    // MARK: RFC 9788 header protection

    /// A signed message whose signed part carries protected headers: hp="clear" on the part,
    /// or the legacy message/rfc822; forwarded=no wrapper.
    static func protected(legacy: Bool, outerFrom: String = "Alice <alice@example.com>",
                          outerSubject: String = "Quarterly figures") throws -> String {
        let inner = "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: Quarterly figures\r\n"
            + "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        let entity = legacy
            ? "Content-Type: message/rfc822; forwarded=no\r\n\r\n" + inner + "MIME-Version: 1.0\r\n" + text
            : "Content-Type: text/plain; charset=us-ascii; hp=\"clear\"\r\n" + inner + "\r\nThe figures are 42.\r\n"
        return head(from: outerFrom, subject: outerSubject) + (try signedPart(entity))
    }

    @Test(arguments: [false, true])
    func protectedHeadersMatchingPass(legacy: Bool) throws {
        let delivered = try Self.deliver(try Self.protected(legacy: legacy), try Self.policy())
        #expect(delivered.verdict.result == .pass, "\(delivered.result)")
        #expect(delivered.verdict.protectedHeaders?.form == (legacy ? .wrapper : .clear))
        #expect(delivered.verdict.note == nil)
        #expect(delivered.subject == " [signed] Quarterly figures")
    }

    @Test(arguments: [false, true])
    func fromChangedOutsideIsPolicy(legacy: Bool) throws {
        let delivered = try Self.deliver(try Self.protected(legacy: legacy, outerFrom: "ceo@example.com"), try Self.policy())
        #expect(delivered.verdict.result == .policy)
        #expect(delivered.verdict.reason?.contains("differs from the signed From (alice@example.com)") == true,
                "\(delivered.verdict.reason ?? "")")
        #expect(delivered.subject?.contains(Self.passTag) != true)
    }

    @Test(arguments: [false, true])
    func subjectChangedOutsideIsReportedAndTheTagGoesOnTheProtectedSubject(legacy: Bool) throws {
        let message = try Self.protected(legacy: legacy, outerSubject: "URGENT: pay now")
        let delivered = try Self.deliver(message, try Self.policy())
        #expect(delivered.verdict.result == .pass)
        #expect(delivered.result.contains("smime=pass (header protection: the outer Subject differs from the signed one)"),
                "\(delivered.result)")
        #expect(delivered.subject == " [signed] Quarterly figures")
    }
}
