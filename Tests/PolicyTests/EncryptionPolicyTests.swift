// SPDX-License-Identifier: Apache-2.0
import Foundation
import SMIME
import Testing
@testable import Policy

@Suite("Encryption table")
struct EncryptionTableTests {
    @Test func firstMatchWinsWithSigningChoice() throws {
        let table = try EncryptionTable.parse(contents: """
            # comment
            boss@partner.example   never
            *@partner.example      REQUIRE
            *@*.partner.example    encrypt   sign=opaque
            *@webmail.example      never     sign=skip
            *                      encrypt
            """, file: "enc.table")
        #expect(table.match("<Boss@Partner.Example>")?.encryption == .never)
        #expect(table.match("x@partner.example")?.encryption == .require)
        #expect(table.match("x@eu.partner.example")?.signing == .opaque)
        #expect(table.match("x@webmail.example").map { ($0.encryption, $0.signing) }! == (.never, .skip))
        #expect(table.match("x@elsewhere.example")?.encryption == .encrypt)
        #expect(table.match("x@elsewhere.example")?.signing == .asConfigured)
        #expect(table.match("x@partner.example")?.line == 3)
    }

    @Test(arguments: [
        ("*@x.example", "expected PATTERN"),
        ("*@x.example maybe", "expected encrypt, require or never"),
        ("*@x.example encrypt sign=clear", "bad value for sign"),
        ("*@x.example encrypt sign=skip sign=opaque", "sign= given twice"),
        ("*@x.example encrypt detached", "the only option is sign="),
        ("*@x.example encrypt\n*@x.example never", "already appears on line 1"),
        ("*  encrypt\n*@x.example never", "catch-all"),
    ])
    func badLinesAreErrorsAtTheirLine(text: String, message: String) throws {
        let error = configurationError { try EncryptionTable.parse(contents: text, file: "enc.table") }
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        #expect(error?.file == "enc.table")
    }

    @Test func keysParseAndDefaults() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let defaults = try parseConfig("")
        #expect(defaults.encryptionTable == nil && defaults.encryptionPolicy == nil)
        #expect(defaults.certificateStore == .sqlite(path: "/var/lib/smime-milter/recipients.sqlite"))
        #expect(defaults.harvestCertificates && defaults.encryptionCipher == .auto && defaults.rsaKeyTransport == .pkcs1)
        #expect(defaults.onMissingRecipientCertificate == .tempfail && defaults.archiveCertificate == nil)
        try scratch.write("enc.table", "*@partner.example require\n")
        let config = try parseConfig("""
            EncryptionTable enc.table
            CertificateStore sqlite:state/store.sqlite
            RecipientCertificateDir recipients
            HarvestCertificates no
            EncryptionCipher AES-256-GCM
            RSAKeyTransport oaep
            ArchiveCertificate archive.pem
            OnMissingRecipientCertificate reject
            CertificateDir /nonexistent/certs
            """, file: scratch.path + "/t.conf")
        #expect(config.encryptionTable?.rules.count == 1)
        #expect(config.certificateStore == .sqlite(path: scratch.path + "/state/store.sqlite"))
        #expect(config.recipientCertificateDir == scratch.path + "/recipients")
        #expect(!config.harvestCertificates && config.encryptionCipher == .aes256GCM && config.cmsRSAKeyTransport == .oaep)
        #expect(config.archiveCertificate == scratch.path + "/archive.pem")
        let policy = try #require(config.encryptionPolicy)
        #expect(policy.onMissingCertificate == .reject && policy.hasArchive && policy.cipher == .aes256GCM)
        #expect(configurationError { try parseConfig("CertificateStore /var/lib/x.sqlite") }?.message.contains("sqlite:PATH") == true)
        #expect(configurationError { try parseConfig("EncryptionCipher des") } != nil)
        #expect(configurationError { try parseConfig("EncryptionTable /nonexistent/enc.table") } != nil)
    }

    @Test func exampleTableMeansWhatItsCommentsSay() throws {
        let table = try EncryptionTable.load(path: repositoryRoot.appendingPathComponent("conf/encryption.table").path)
        #expect(table.match("anyone@partner.example")?.encryption == .require)
        #expect(table.match("someone@webmail.example")?.signing == .skip)
        #expect(table.match("x@example.org")?.encryption == .encrypt)
    }
}

@Suite("Encryption decisions")
struct EncryptionDecisionTests {
    static let table = try! EncryptionTable.parse(contents: """
        *@partner.example   require
        *@webmail.example   never   sign=skip
        *@bank.example      encrypt sign=opaque
        *@open.example      encrypt
        """, file: "t")
    static let policy = EncryptionPolicy(table: table, hasArchive: true)

    static func facts(_ address: String, cert: Bool, gcm: Bool = false) -> RecipientFacts {
        RecipientFacts(address: address, recipientClass: policy.classify(address, hasUsableCertificate: cert),
                       capabilities: cert ? SMIMECapabilities(algorithms: gcm ? [SMIMECapabilities.aes256GCM] : [SMIMECapabilities.aes256CBC]) : nil)
    }

    @Test func firstRecipientFixesTheClassLaterOnesOfAnotherAreDeferred() {
        let p = Self.policy
        let first = p.classify("a@open.example", hasUsableCertificate: true)
        #expect(p.atRecipient(first, transactionClass: nil) == .accept(first))
        // Same class: accepted into the transaction.
        let same = p.classify("b@open.example", hasUsableCertificate: true)
        #expect(p.atRecipient(same, transactionClass: first) == .accept(first))
        // Without a certificate, the encrypt class differs: deferred to its own transaction.
        let noCert = p.classify("c@open.example", hasUsableCertificate: false)
        guard case .deferToOwnTransaction(let reply) = p.atRecipient(noCert, transactionClass: first) else {
            Issue.record("not deferred"); return
        }
        #expect(reply.code == "452" && reply.xcode == "4.5.3")
        // Another signing choice is another class, certificate or not.
        let opaque = p.classify("d@bank.example", hasUsableCertificate: true)
        #expect(p.atRecipient(opaque, transactionClass: first) != .accept(first))
        // Unlisted and never recipients are classes too; never ignores certificates.
        let unlisted = p.classify("e@example.org", hasUsableCertificate: true)
        #expect(unlisted.encryption == nil && !unlisted.hasUsableCertificate)
        #expect(p.classify("f@webmail.example", hasUsableCertificate: true) == p.classify("g@webmail.example", hasUsableCertificate: false))
    }

    @Test func requireWithoutCertificateIsRefusedAtOnce() {
        let required = Self.policy.classify("x@partner.example", hasUsableCertificate: false)
        #expect(Self.policy.atRecipient(required, transactionClass: nil) == .refuse(reply: Self.policy.missingCertificateReply))
        #expect(Self.policy.missingCertificateReply.code == "450")
        var rejecting = Self.policy
        rejecting.onMissingCertificate = .reject
        #expect(rejecting.missingCertificateReply.code == "550" && rejecting.missingCertificateReply.xcode == "5.7.1")
    }

    @Test func endOfMessage() {
        let p = Self.policy
        #expect(p.atEndOfMessage([Self.facts("a@open.example", cert: true), Self.facts("b@partner.example", cert: true)])
                == .encrypt(recipients: ["a@open.example", "b@partner.example"], cipher: .aes256CBC, archive: true))
        // GCM only when every recipient announces it.
        #expect(p.atEndOfMessage([Self.facts("a@open.example", cert: true, gcm: true)])
                == .encrypt(recipients: ["a@open.example"], cipher: .aes256GCM, archive: true))
        #expect(p.atEndOfMessage([Self.facts("a@open.example", cert: true, gcm: true), Self.facts("b@open.example", cert: true)])
                == .encrypt(recipients: ["a@open.example", "b@open.example"], cipher: .aes256CBC, archive: true))
        // encrypt is opportunistic: one recipient without a certificate makes it plaintext for all.
        guard case .plaintext(let reason) = p.atEndOfMessage([Self.facts("a@open.example", cert: true), Self.facts("b@open.example", cert: false)]) else {
            Issue.record("expected plaintext"); return
        }
        #expect(reason.contains("b@open.example"))
        guard case .plaintext(let none) = p.atEndOfMessage([Self.facts("a@example.org", cert: false)]) else { Issue.record("expected plaintext"); return }
        #expect(none.contains("no recipient is listed"))
        guard case .plaintext(let never) = p.atEndOfMessage([Self.facts("a@open.example", cert: true), Self.facts("w@webmail.example", cert: true)]) else {
            Issue.record("expected plaintext"); return
        }
        #expect(never.contains("w@webmail.example"))
    }

    @Test func aRequireRecipientNeverGetsPlaintext() {
        let p = Self.policy
        // Without its certificate.
        guard case .refuse(let reply, let reason) = p.atEndOfMessage([Self.facts("a@open.example", cert: true), Self.facts("r@partner.example", cert: false)]) else {
            Issue.record("expected refuse"); return
        }
        #expect(reply.code == "450" && reason.contains("r@partner.example"))
        // With it, but mixed with a recipient that cannot get encrypted mail (a message the RCPT split missed).
        for other in [Self.facts("u@example.org", cert: false), Self.facts("w@webmail.example", cert: true), Self.facts("n@open.example", cert: false)] {
            guard case .refuse(let mixed, let why) = p.atEndOfMessage([Self.facts("r@partner.example", cert: true), other]) else {
                Issue.record("\(other.address): a require recipient would get plaintext"); continue
            }
            #expect(mixed.xcode == "4.5.3" && why.contains("differ in class"))
        }
    }

    @Test func signingChoiceOfAMessage() {
        #expect(EncryptionPolicy.signing(for: [Self.facts("a@webmail.example", cert: false), Self.facts("b@webmail.example", cert: false)]) == .skip)
        #expect(EncryptionPolicy.signing(for: [Self.facts("a@webmail.example", cert: false), Self.facts("b@bank.example", cert: true)]) == .asConfigured)
        #expect(EncryptionPolicy.signing(for: [Self.facts("b@bank.example", cert: true)]) == .opaque)
    }

    @Test func configuredCipherOverridesCapabilities() {
        var p = Self.policy
        p.cipher = .aes256GCM
        #expect(p.contentCipher(for: [Self.facts("a@open.example", cert: true)]) == .aes256GCM)
        p.cipher = .aes256CBC
        #expect(p.contentCipher(for: [Self.facts("a@open.example", cert: true, gcm: true)]) == .aes256CBC)
    }
}
