// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import SMIME

@Suite("IdentityStore")
struct IdentityStoreTests {
    @Test func loadsTheGoodIdentities() throws {
        let pki = try TestPKI.get()
        let store = IdentityStore.load(directory: pki.certs)
        #expect(store.identities.map(\.name) == ["alice", "bob", "carol", "news"])
        #expect(store.rejected.isEmpty, "\(store.rejected)")

        let alice = try #require(store.identity(named: "alice"))
        #expect(alice.keyDescription == "RSA-2048")
        #expect(alice.addresses == ["alice@example.com"])
        #expect(alice.subject.contains("CN=alice@example.com"))
        #expect(alice.issuer.contains("CN=smime-milter Test Issuing CA"))
        #expect(alice.chainSubjects.count == 1)
        #expect(alice.chainSubjects.first?.contains("Test Issuing CA") == true)
        #expect(!alice.serialHex.isEmpty && alice.serialHex.allSatisfy(\.isHexDigit))
        #expect(alice.notBefore < Date() && Date() < alice.notAfter)
        #expect(alice.sourceFiles == [pki.certs + "/alice.pem"])

        let bob = try #require(store.identity(named: "bob"))
        #expect(bob.keyDescription == "EC-P-256")
        #expect(bob.addresses == ["bob@example.com"])
        #expect(bob.sourceFiles == [pki.certs + "/bob.pem", pki.certs + "/bob.key"])

        let carol = try #require(store.identity(named: "carol"))
        #expect(carol.keyDescription == "RSA-3072")
        #expect(Set(carol.addresses) == ["carol@example.com", "carol@sales.example.com"])
        #expect(carol.chainSubjects.count == 1)
        #expect(carol.sourceFiles == [pki.certs + "/carol.p12", pki.certs + "/carol.pass"])

        let news = try #require(store.identity(named: "news"))
        #expect(news.addresses == ["newsletter@example.net"])
    }

    @Test func findsIdentitiesByAddressIgnoringCase() throws {
        let store = IdentityStore.load(directory: try TestPKI.get().certs)
        #expect(store.identity(forAddress: "ALICE@Example.COM")?.name == "alice")
        #expect(store.identity(forAddress: "carol@sales.example.com")?.name == "carol")
        #expect(store.identity(forAddress: "newsletter@example.net")?.name == "news")
        #expect(store.identity(forAddress: "nobody@example.com") == nil)
        #expect(store.identity(named: "nobody") == nil)
    }

    @Test func prefersTheLatestNotAfterWhenSeveralMatch() throws {
        let pki = try TestPKI.get()
        let dir = try TemporaryDirectory(prefix: "renewed")
        let alice = try pki.identity("alice")
        let short = try issueAlice(pki: pki, in: dir, name: "alice-short", days: 30)
        let long = try issueAlice(pki: pki, in: dir, name: "alice-long", days: 900)
        #expect(short.notAfter < alice.notAfter && alice.notAfter < long.notAfter)
        #expect(short.keyDescription == "EC-P-256")

        let three = IdentityStore(identities: [short, long, alice])
        #expect(three.identity(forAddress: "Alice@example.com")?.name == "alice-long")
        let two = IdentityStore(identities: [short, alice])
        #expect(two.identity(forAddress: "alice@example.com")?.name == "alice")
    }

    /// Issues another alice@example.com certificate (EC P-256) valid for `days`, with openssl.
    private func issueAlice(pki: TestPKI, in dir: TemporaryDirectory, name: String, days: Int) throws -> SigningIdentity {
        try issue(pki: pki, in: dir, name: name, address: "alice@example.com",
                  newKey: ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"], days: days)
        return try IdentityLoader.load(name: name, directory: dir.path)
    }

    /// Issues a certificate for `address` from the test intermediate with `openssl req -CA`.
    func issue(pki: TestPKI, in dir: TemporaryDirectory, name: String, address: String,
               newKey: [String], days: Int) throws {
        let config = try dir.write("\(name).cnf", Array("""
            [req]
            distinguished_name = dn
            x509_extensions = leaf
            prompt = no
            [dn]
            CN = \(address)
            [leaf]
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature
            extendedKeyUsage = emailProtection
            subjectAltName = email:\(address)

            """.utf8))
        let result = try Subprocess.run("openssl", [
            "req", "-x509", "-config", config, "-newkey"] + newKey + [
            "-nodes", "-keyout", dir.path + "/\(name).key", "-out", dir.path + "/\(name).pem",
            "-days", String(days), "-CA", pki.directory + "/intermediate.pem",
            "-CAkey", pki.directory + "/intermediate.key",
        ])
        #expect(result.status == 0, "\(result.combined)")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: dir.path + "/\(name).key")
    }

    /// Ed25519 needs OpenSSL 3.2+ for CMS; either it loads and signs (SHA-512 only), or it is
    /// refused at load time with a clear reason, never at the first message.
    @Test func ed25519IsEitherUsableOrRefusedAtLoad() throws {
        let pki = try TestPKI.get()
        let dir = try TemporaryDirectory(prefix: "ed25519")
        try issue(pki: pki, in: dir, name: "ed", address: "ed@example.com", newKey: ["ed25519"], days: 30)
        let store = IdentityStore.load(directory: dir.path)
        if let ed = store.identity(named: "ed") {
            #expect(ed.keyDescription == "Ed25519")
            #expect(ed.requiredDigest == .sha512)
            #expect(throws: SMIMEError.self) {
                try CMSSigner.sign(content: Samples.text, identity: ed, digest: .sha256, detached: true)
            }
            let (message, _) = try Samples.multipartSignedMessage(entity: Samples.text, identity: ed, digest: .sha512)
            let verdict = try OpenSSLVerifier.verify(message: message, root: pki.rootPEM)
            #expect(verdict.valid, "\(verdict.log)")
        } else {
            let problem = try #require(store.rejected.first)
            #expect(problem.file == dir.path + "/ed.pem")
            #expect(problem.reason.contains("cannot make a CMS signature with this Ed25519 key"), "\(problem)")
        }
    }

    @Test(arguments: [
        ("expired", "expired"),
        ("notyet", "not yet valid"),
        ("nodigsig", "digitalSignature"),
        ("wrongeku", "emailProtection"),
        ("mismatch", "does not match"),
        ("readable", "group or others"),
    ])
    func refusesBadIdentities(name: String, reasonFragment: String) throws {
        let pki = try TestPKI.get()
        let store = IdentityStore.load(directory: pki.bad)
        #expect(store.identities.isEmpty, "\(store.identities.map(\.name))")
        let problem = try #require(store.rejected.first { $0.file == pki.bad + "/\(name).pem" }, "\(store.rejected)")
        #expect(problem.reason.contains(reasonFragment), "\(problem)")
        // Every bad identity gives exactly one problem.
        #expect(store.rejected.count == 6)
    }

    @Test func garbageAndWrongPassphraseAndMissingKeyAreClearProblems() throws {
        let pki = try TestPKI.get()
        let dir = try TemporaryDirectory(prefix: "garbage")
        var random = SystemRandomNumberGenerator()
        try dir.write("garbage.pem", (0..<300).map { _ in UInt8.random(in: 0...255, using: &random) })
        try dir.write("junk.p12", Array("this is not PKCS#12".utf8))
        let carolP12 = try Data(contentsOf: URL(fileURLWithPath: pki.certs + "/carol.p12"))
        try dir.write("wrongpass.p12", [UInt8](carolP12))
        try dir.write("wrongpass.pass", Array("not-the-secret\n".utf8))
        try dir.write("nopass.p12", [UInt8](carolP12))
        // A certificate file without a key (bob.pem without bob.key).
        let bobPEM = try Data(contentsOf: URL(fileURLWithPath: pki.certs + "/bob.pem"))
        try dir.write("keyless.pem", [UInt8](bobPEM), mode: 0o644)
        // A key file readable by others is refused before it is read.
        try dir.write("openkey.pem", [UInt8](bobPEM), mode: 0o644)
        let bobKey = try Data(contentsOf: URL(fileURLWithPath: pki.certs + "/bob.key"))
        try dir.write("openkey.key", [UInt8](bobKey), mode: 0o640)
        // A stray key without certificate.
        try dir.write("stray.key", [UInt8](bobKey))

        let store = IdentityStore.load(directory: dir.path)
        #expect(store.identities.isEmpty)
        func reason(_ file: String) -> String {
            store.rejected.first { $0.file == dir.path + "/" + file }?.reason ?? "(no problem reported)"
        }
        #expect(reason("garbage.pem").contains("no PEM certificate"))
        #expect(reason("junk.p12").contains("not a PKCS#12 file"))
        #expect(reason("wrongpass.p12").contains("wrong PKCS#12 passphrase"))
        #expect(reason("nopass.p12").contains("needs a passphrase"))
        #expect(reason("keyless.pem").contains("no private key"))
        #expect(reason("openkey.key").contains("group or others"))
        #expect(reason("stray.key").contains("no certificate"))
        #expect(store.rejected.count == 7, "\(store.rejected)")

        for problem in store.rejected {
            #expect(!problem.description.contains("PRIVATE KEY"), "\(problem)")
            #expect(!problem.description.contains("not-the-secret"), "\(problem)")
            #expect(!problem.description.contains("carol-p12-secret"), "\(problem)")
        }
    }

    @Test func problemsOfTheBadDirectoryHoldNoSecrets() throws {
        let store = IdentityStore.load(directory: try TestPKI.get().bad)
        #expect(!store.rejected.isEmpty)
        for problem in store.rejected {
            #expect(!problem.description.contains("PRIVATE KEY"), "\(problem)")
            #expect(!problem.description.contains("-----BEGIN"), "\(problem)")
        }
    }

    @Test func checksValidityAgainstTheGivenTime() throws {
        let pki = try TestPKI.get()
        let alice = try pki.identity("alice")
        let later = alice.notAfter.addingTimeInterval(86_400)
        #expect(throws: IdentityProblem.self) {
            try IdentityLoader.load(name: "alice", directory: pki.certs, now: later)
        }
        let store = IdentityStore.load(directory: pki.bad, now: Date(timeIntervalSince1970: 1_600_000_000))
        // In 2020 the "expired" certificate (2019-2021) was valid.
        #expect(!store.rejected.contains { $0.file.hasSuffix("/expired.pem") })
        #expect(store.identity(named: "expired")?.addresses == ["expired@example.com"])
    }

    @Test func aMissingDirectoryIsAProblemNotACrash() {
        let store = IdentityStore.load(directory: "/nonexistent-smime-milter-test-dir")
        #expect(store.identities.isEmpty)
        #expect(store.rejected.count == 1)
    }
}
