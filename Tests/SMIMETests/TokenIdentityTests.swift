// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import SMIME

@Suite("PKCS#11 URIs, token PIN files, encrypted key files")
struct TokenIdentityTests {
    @Test func parsesTheAttributesOfAKeyURI() throws {
        let uri = try PKCS11URI("pkcs11:token=Mail%20Gateway;object=alice;type=private;id=%01%02\n")
        #expect(uri.value("token") == "Mail Gateway")
        #expect(uri.value("object") == "alice")
        #expect(uri.value("type") == "private")
        #expect(uri.value("id") == "0102")
        #expect(uri.engineURI == "pkcs11:token=Mail%20Gateway;object=alice;type=private;id=%01%02")
        #expect(try PKCS11URI("PKCS11:id=%AB").value("id") == "ab")
        #expect(try PKCS11URI("pkcs11:object=a;x-vendor=1").value("x-vendor") == "1")
    }

    @Test(arguments: [
        ("pkcs11:token=t;object=k?pin-value=1234", "TokenPINFile"),
        ("pkcs11:token=t;object=k?pin-source=file:/etc/pin", "TokenPINFile"),
        ("pkcs11:object=k?module-path=/usr/lib/softhsm/libsofthsm2.so", "PKCS11Module"),
        ("pkcs11:object=k?module-name=softhsm2", "PKCS11Module"),
        ("pkcs11:token=t;object=k;type=cert", "type=private"),
        ("pkcs11:token=t", "names no key"),
        ("pkcs11:object=k;colour=blue", "unknown attribute"),
        ("pkcs11:object=k;object=j", "twice"),
        ("pkcs11:object=%zz", "percent-encoding"),
        ("pkcs11:object=%4", "percent-encoding"),
        ("pkcs11:object=%ff", "percent-encoding"),
        ("pkcs11:object", "not name=value"),
        ("pkcs11:object=a b", "white space"),
        ("file:/etc/key.pem", "does not start with pkcs11:"),
    ])
    func refusesBadURIs(text: String, fragment: String) {
        do {
            _ = try PKCS11URI(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.reason.contains(fragment), "\(error)")
            #expect(!error.description.contains("1234"))
        }
    }

    @Test func twoKeysMadeInOneSecondForOneAddressGetTwoLabels() throws {
        // An enrolment and a renewal in the same second: the time alone would give one label,
        // and the key's URI would then name both objects.
        let now = Date(timeIntervalSince1970: 1_796_472_000)
        let first = TokenKeyGenerator.label(for: "kay@example.com", now: now, id: [0x1a, 0x2b, 0x3c, 0x4d, 0x5e])
        let second = TokenKeyGenerator.label(for: "kay@example.com", now: now, id: [0x00, 0x2b, 0x3c, 0x4d, 0x5e])
        #expect(first == "smime-kay@example.com-20261205T120000Z-1a2b3c4d")
        #expect(first != second)
        #expect(TokenKeyGenerator.label(for: "k ä/y@example.com", now: now, id: [1, 2, 3, 4])
                == "smime-k___y@example.com-20261205T120000Z-01020304")
        // Each label is a valid object value of a key URI.
        #expect(try PKCS11URI("pkcs11:token=t;object=\(first);type=private").value("object") == first)
    }

    @Test func readsAPINFileAndStripsTheLineEnd() throws {
        let dir = try TemporaryDirectory(prefix: "pin")
        let path = try dir.write("token.pin", Array("s3cret-PIN\r\n".utf8))
        #expect(try TokenSettings(pinFile: path).readPIN() == Array("s3cret-PIN".utf8))
        #expect(try TokenSettings().readPIN() == nil)
    }

    @Test func refusesPINFilesThatAreOpenEmptyOrOdd() throws {
        let dir = try TemporaryDirectory(prefix: "pin")
        let cases: [(String, [UInt8], Int, String)] = [
            ("open.pin", Array("123456\n".utf8), 0o640, "group or others"),
            ("empty.pin", Array("\n".utf8), 0o600, "empty"),
            ("two.pin", Array("1234\n5678\n".utf8), 0o600, "one line"),
            ("nul.pin", [0x31, 0x00, 0x32], 0o400, "one line"),
        ]
        for (name, bytes, mode, fragment) in cases {
            let path = try dir.write(name, bytes, mode: mode)
            do {
                _ = try TokenSettings(pinFile: path).readPIN()
                Issue.record("accepted \(name)")
            } catch {
                #expect(error.reason.contains(fragment), "\(name): \(error)")
                #expect(!error.description.contains("123456") && !error.description.contains("5678"))
            }
        }
        do {
            _ = try TokenSettings(pinFile: dir.path + "/missing.pin").readPIN()
            Issue.record("accepted a missing PIN file")
        } catch {
            #expect(error.reason.contains("cannot open"))
        }
    }

    @Test func findsASystemdCredential() throws {
        let env = ["CREDENTIALS_DIRECTORY": "/run/credentials/smime-milter.service"]
        #expect(try TokenSettings.pinPath("credential:token-pin", environment: env)
                == "/run/credentials/smime-milter.service/token-pin")
        #expect(try TokenSettings.pinPath("/etc/smime-milter/pin", environment: env) == "/etc/smime-milter/pin")
        #expect(throws: IdentityProblem.self) { try TokenSettings.pinPath("credential:token-pin", environment: [:]) }
        #expect(throws: IdentityProblem.self) { try TokenSettings.pinPath("credential:../x", environment: env) }
        #expect(throws: IdentityProblem.self) { try TokenSettings.pinPath("credential:", environment: env) }
    }

    @Test func aKeyFileWithABadURIIsAClearProblem() throws {
        let pki = try TestPKI.get()
        let dir = try TemporaryDirectory(prefix: "tokenuri")
        let bobPEM = try Data(contentsOf: URL(fileURLWithPath: pki.certs + "/bob.pem"))
        _ = try dir.write("bob.pem", [UInt8](bobPEM), mode: 0o644)
        // A URI is no secret: a readable key file holding one is fine, a PIN in it is not.
        _ = try dir.write("bob.key", Array("pkcs11:token=t;object=bob?pin-value=9876\n".utf8), mode: 0o644)
        let store = IdentityStore.load(directory: dir.path)
        #expect(store.identities.isEmpty)
        let problem = try #require(store.rejected.first)
        #expect(problem.file == dir.path + "/bob.key")
        #expect(problem.reason.contains("bad pkcs11 URI") && problem.reason.contains("TokenPINFile"), "\(problem)")
        #expect(!problem.description.contains("9876"))
    }

    @Test func aTokenThatIsNotThereRefusesTheIdentityWithoutACrash() throws {
        let pki = try TestPKI.get()
        let dir = try TemporaryDirectory(prefix: "notoken")
        let bobPEM = try Data(contentsOf: URL(fileURLWithPath: pki.certs + "/bob.pem"))
        _ = try dir.write("bob.pem", [UInt8](bobPEM), mode: 0o644)
        _ = try dir.write("bob.key", Array("pkcs11:token=no-such-token-here;object=bob;type=private\n".utf8))
        let store = IdentityStore.load(directory: dir.path, tokens: TokenSettings())
        #expect(store.identities.isEmpty)
        let problem = try #require(store.rejected.first)
        #expect(problem.reason.contains("token key pkcs11:token=no-such-token-here"), "\(problem)")
    }

    @Test func anEncryptedPKCS8KeyFileLoadsWithItsPassphraseFile() throws {
        let pki = try TestPKI.get()
        let dir = try TemporaryDirectory(prefix: "pkcs8")
        let bobPEM = try Data(contentsOf: URL(fileURLWithPath: pki.certs + "/bob.pem"))
        _ = try dir.write("bob.pem", [UInt8](bobPEM), mode: 0o644)
        let encrypted = dir.path + "/bob.key"
        let result = try Subprocess.run("/usr/bin/openssl", [
            "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", pki.certs + "/bob.key", "-out", encrypted,
            "-passout", "pass:bob-key-secret",
        ])
        #expect(result.status == 0, "\(result)")
        chmod(encrypted, 0o600)
        let text = try String(contentsOfFile: encrypted, encoding: .utf8)
        #expect(text.contains("BEGIN ENCRYPTED PRIVATE KEY"))

        // Without bob.pass: a clear problem.
        var store = IdentityStore.load(directory: dir.path)
        #expect(store.identities.isEmpty)
        #expect(store.rejected.first?.reason.contains("encrypted without bob.pass") == true, "\(store.rejected)")
        // Wrong passphrase: refused, and the passphrase is not repeated.
        _ = try dir.write("bob.pass", Array("wrong-secret\n".utf8))
        store = IdentityStore.load(directory: dir.path)
        #expect(store.rejected.first?.reason.contains("wrong passphrase") == true, "\(store.rejected)")
        #expect(store.rejected.allSatisfy { !$0.description.contains("wrong-secret") })
        // The right one, in a file only the owner can read.
        _ = try dir.write("bob.pass", Array("bob-key-secret\n".utf8))
        store = IdentityStore.load(directory: dir.path)
        let bob = try #require(store.identity(named: "bob"), "\(store.rejected)")
        #expect(bob.sourceFiles == [dir.path + "/bob.pem", dir.path + "/bob.key", dir.path + "/bob.pass"])
        #expect(bob.tokenKey == nil)
        let signature = try CMSSigner.sign(content: Array("hello\r\n".utf8), identity: bob, digest: .sha256, detached: true)
        #expect(!signature.isEmpty)
        // A passphrase file others can read is refused.
        _ = try dir.write("bob.pass", Array("bob-key-secret\n".utf8), mode: 0o644)
        store = IdentityStore.load(directory: dir.path)
        #expect(store.rejected.first?.reason.contains("group or others") == true, "\(store.rejected)")
    }
}
