// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Policy
import RecipientStoreSQLite
import SMIME
import Testing

/// A test PKI made by Tests/fixtures/make_test_pki.py, once per run.
enum FlowPKI {
    static let directory: Result<String, any Error> = Result {
        let out = FileManager.default.temporaryDirectory.path + "/smime-store-pki-" + UUID().uuidString
        var root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) { root.deleteLastPathComponent() }
        let made = try Subprocess.run("python3", [root.path + "/Tests/fixtures/make_test_pki.py", out])
        guard made.status == 0 else { throw HelperMissing(description: "make_test_pki.py: \(made.combined)") }
        return out
    }
    static func get() throws -> String { try directory.get() }
}

/// Harvest from real signed mail (signed by `openssl cms -sign`, as a partner's client would),
/// store, check at the point of use, encrypt, decrypt with openssl.
@Suite("Harvest, store, encrypt")
struct EncryptionFlowTests {
    /// A message signed by `signer` (PEM with key) with the given From.
    static func signedMessage(signer: String, from: String, digest: String = "sha256") throws -> [UInt8] {
        let pki = try FlowPKI.get()
        let scratch = try Scratch()
        let input = scratch.path + "/in.txt"
        try Data("Content-Type: text/plain\r\n\r\nHello from a partner.\r\n".utf8).write(to: URL(fileURLWithPath: input))
        let out = scratch.path + "/out.eml"
        let signed = try Subprocess.run("openssl", ["cms", "-sign", "-md", digest, "-in", input, "-signer", signer,
                                                    "-certfile", pki + "/intermediate.pem",
                                                    "-from", from, "-to", "alice@example.com", "-subject", "signed", "-out", out])
        guard signed.status == 0 else { throw HelperMissing(description: "openssl cms -sign: \(signed.combined)") }
        let text = try String(contentsOfFile: out, encoding: .utf8)
        return Array(text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n").utf8)
    }

    struct Setup {
        let pki: String
        let scratch: Scratch
        let store: SQLiteRecipientStore
        let verifier: MessageVerifier
        let lookup: RecipientCertificateLookup
        init(allowWeak: Bool = false) throws {
            pki = try FlowPKI.get()
            scratch = try Scratch()
            store = try SQLiteRecipientStore(path: scratch.store)
            let trust = try TrustStore(anchors: [pki + "/root.pem"])
            verifier = MessageVerifier(trust: trust, options: VerificationOptions(allowWeakAlgorithms: allowWeak))
            lookup = RecipientCertificateLookup(store: store, check: RecipientCertificateCheck(trust: trust))
        }

        func harvest(_ message: [UInt8], from: String) throws -> (VerificationReport, HarvestLogEntry?) {
            let (fields, body) = try MessageParser.split(message)
            let report = verifier.verify(fields: fields, body: body, fromAddress: from, at: Date())
            let entry = try RecipientCertificateHarvester(store: store).harvest(fields: fields, body: body, report: report,
                                                                               fromAddress: from, queueID: "Q1", at: Date())
            return (report, entry)
        }
    }

    @Test(arguments: ["dave", "erin"])
    func harvestedCertificateIsUsedForTheNextMessage(name: String) throws {
        let setup = try Setup()
        let address = "\(name)@partner.example"
        let (report, entry) = try setup.harvest(try Self.signedMessage(signer: setup.pki + "/enc/\(name).pem", from: address), from: address)
        #expect(report.result == .pass, "\(report)")
        #expect(entry?.kept == true && entry?.reason == "kept (new)", "\(String(describing: entry))")
        let stored = try #require(try setup.store.current(for: address))
        #expect(stored.source == .harvested && stored.intermediatesDER.count == 1)
        #expect(stored.capabilities?.algorithms.first == SMIMECapabilities.aes256CBC)
        // The point of use.
        let usable = try setup.lookup.usable(for: "<\(address.uppercased())>", at: Date()).get()
        // The next outbound message, signed part and all, encrypted to the sender.
        let fields = [HeaderField(name: "Content-Type", value: " text/plain; charset=us-ascii")]
        let body = Array("Reply to the partner.\r\n".utf8)
        let encrypted = try MessageEncryption.encrypt(contentFields: fields, body: body, recipients: [usable.certificate],
                                                      archive: nil, cipher: .aes256CBC, rsaKeyTransport: .pkcs1)
        let message = Array(("From: alice@example.com\r\nTo: \(address)\r\nMIME-Version: 1.0\r\nContent-Type: \(encrypted.contentType)\r\n"
                             + "Content-Transfer-Encoding: base64\r\nContent-Disposition: \(encrypted.contentDisposition)\r\n\r\n").utf8) + encrypted.body
        let file = try setup.scratch.write("enc.eml", message)
        let out = setup.scratch.path + "/plain"
        let decrypted = try Subprocess.run("openssl", ["cms", "-decrypt", "-binary", "-in", file, "-inkey", setup.pki + "/enc/\(name).pem", "-out", out])
        #expect(decrypted.status == 0, "\(decrypted.combined)")
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "Content-Type: text/plain; charset=us-ascii\r\n\r\nReply to the partner.\r\n")
        // Seen again: refreshed, one row.
        let (_, again) = try setup.harvest(try Self.signedMessage(signer: setup.pki + "/enc/\(name).pem", from: address), from: address)
        #expect(again?.reason == "kept (seen again)")
        #expect(try setup.store.history(for: address).count == 1)
        #expect(try setup.store.harvestLog(limit: 5).count == 2)
    }

    @Test func neverHarvested() throws {
        let setup = try Setup()
        let cases: [(signer: String, from: String, why: String)] = [
            ("enc/expired.pem", "old@partner.example", "smime=fail"),
            ("enc/mallory.pem", "mallory@partner.example", "smime=fail"),
            ("enc/dave.pem", "erin@partner.example", "smime=policy"),
        ]
        for item in cases {
            let (report, entry) = try setup.harvest(try Self.signedMessage(signer: setup.pki + "/" + item.signer, from: item.from), from: item.from)
            #expect(report.result != .pass)
            #expect(entry?.kept == false && entry?.reason.contains(item.why) == true, "\(item.signer): \(String(describing: entry))")
            #expect(try setup.store.current(for: item.from) == nil)
        }
        #expect(try setup.store.list().isEmpty)
        #expect(try setup.store.harvestLog(limit: 10).count == 3)
    }

    @Test func weakIsNeverHarvestedEvenWhenTheVerifierAllowsIt() throws {
        let setup = try Setup(allowWeak: true)
        let digest = try Self.signedMessage(signer: setup.pki + "/enc/dave.pem", from: "dave@partner.example", digest: "sha1")
        let (report, entry) = try setup.harvest(digest, from: "dave@partner.example")
        #expect(report.result == .pass, "AllowWeakAlgorithms passes it: \(report)")
        #expect(entry?.kept == false && entry?.reason.contains("weak algorithm: SHA-1") == true, "\(String(describing: entry))")
        let cert = try Self.signedMessage(signer: setup.pki + "/enc/sha1.pem", from: "sha1@partner.example")
        let (_, certEntry) = try setup.harvest(cert, from: "sha1@partner.example")
        #expect(certEntry?.kept == false && certEntry?.reason.contains("signed with SHA-1") == true, "\(String(describing: certEntry))")
        let (_, keyEntry) = try setup.harvest(try Self.signedMessage(signer: setup.pki + "/enc/weakkey.pem", from: "weakkey@partner.example"),
                                              from: "weakkey@partner.example")
        #expect(keyEntry?.kept == false && keyEntry?.reason.contains("RSA-1024") == true, "\(String(describing: keyEntry))")
        #expect(try setup.store.list().isEmpty)
    }

    @Test func foldedContentFieldsKeepTheirFoldsWithCRLF() throws {
        let setup = try Setup()
        let dave = try RecipientCertificate.certificates(pem: [UInt8](Data(contentsOf: URL(fileURLWithPath: setup.pki + "/enc/dave.pem"))))
        // As the MTA gives them: leading space kept, folded with a bare LF.
        let fields = [HeaderField(name: "Content-Type", value: " multipart/signed; protocol=\"application/pkcs7-signature\";\n\tmicalg=sha-256; boundary=\"b\""),
                      HeaderField(name: "MIME-Version", value: " 1.0")]
        let body = Array("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n".utf8)
        let encrypted = try MessageEncryption.encrypt(contentFields: fields, body: body, recipients: [dave[0]], archive: dave[0],
                                                      cipher: .aes256GCM, rsaKeyTransport: .oaep)
        #expect(encrypted.contentType.contains("smime-type=authEnveloped-data"))
        let der = [UInt8](try #require(Data(base64Encoded: Data(encrypted.body), options: .ignoreUnknownCharacters)))
        let file = try setup.scratch.write("enc.der", der)
        let out = setup.scratch.path + "/plain"
        let decrypted = try Subprocess.run("openssl", ["cms", "-decrypt", "-binary", "-inform", "DER", "-in", file,
                                                       "-inkey", setup.pki + "/enc/dave.pem", "-out", out])
        #expect(decrypted.status == 0, "\(decrypted.combined)")
        let expected = "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n\tmicalg=sha-256; boundary=\"b\"\r\n"
            + "MIME-Version: 1.0\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n"
        #expect(try String(contentsOfFile: out, encoding: .utf8) == expected)
    }

    @Test func unsignedMailIsNotLogged() throws {
        let setup = try Setup()
        let (_, entry) = try setup.harvest(Array("From: x@partner.example\r\nSubject: hi\r\n\r\nplain\r\n".utf8), from: "x@partner.example")
        #expect(entry == nil)
        #expect(try setup.store.harvestLog(limit: 10).isEmpty)
    }

    @Test func directoryCertificatesAreCheckedAtUse() throws {
        let setup = try Setup()
        let dir = setup.scratch.path + "/recipients"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for name in ["dave", "expired", "nokeyenc"] {
            try FileManager.default.copyItem(atPath: setup.pki + "/enc/\(name).pem", toPath: dir + "/\(name).pem")
        }
        try Data("not a certificate".utf8).write(to: URL(fileURLWithPath: dir + "/junk.pem"))
        try FileManager.default.copyItem(atPath: setup.pki + "/root.pem", toPath: dir + "/root.pem")
        let report = try RecipientCertificateImport.loadDirectory(dir, into: setup.store, at: Date())
        #expect(Set(report.stored.map(\.address)) == ["dave@partner.example", "old@partner.example", "nokeyenc@partner.example"])
        #expect(report.problems.count == 2, "\(report.problems)")
        #expect(try setup.store.current(for: "dave@partner.example")?.source == .directory)
        #expect((try? setup.lookup.usable(for: "dave@partner.example", at: Date()).get()) != nil)
        guard case .failure(let expired) = try setup.lookup.usable(for: "old@partner.example", at: Date()) else { Issue.record("expired usable"); return }
        #expect(expired.reason.contains("expired"))
        guard case .failure(let keyUsage) = try setup.lookup.usable(for: "nokeyenc@partner.example", at: Date()) else { Issue.record("usable"); return }
        #expect(keyUsage.reason.contains("keyEncipherment"))
        guard case .failure(let none) = try setup.lookup.usable(for: "nobody@partner.example", at: Date()) else { Issue.record("usable"); return }
        #expect(none.reason == "no certificate")
        // Loading again changes nothing but the last-seen time.
        let again = try RecipientCertificateImport.loadDirectory(dir, into: setup.store, at: Date())
        #expect(again.stored.allSatisfy { $0.outcome == .refreshed })
    }
}

extension Scratch {
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let file = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }
}
