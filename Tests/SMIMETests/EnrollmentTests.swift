// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import SMIME

/// Keys, requests and the check of an issued certificate (the pieces `identity new` uses).
@Suite("Enrollment")
struct EnrollmentTests {
    private func read(_ path: String) throws -> [UInt8] {
        try #require(FileManager.default.contents(atPath: path)).map { $0 }
    }

    @Test func requestFitsTheMailboxProfile() throws {
        let key = try NewKey(generating: .p256)
        let pem = try CertificateRequest(address: "dave@example.com", key: key).pem()
        let dir = try TemporaryDirectory(prefix: "req")
        let file = dir.path + "/req.pem"
        FileManager.default.createFile(atPath: file, contents: Data(pem))
        let text = try Subprocess.run("openssl", ["req", "-noout", "-text", "-verify", "-in", file])
        let out = text.stdout
        #expect(out.contains("Subject: CN = dave@example.com"))
        #expect(out.contains("email:dave@example.com"))
        #expect(out.contains("E-mail Protection"))
        #expect(out.contains("Digital Signature, Key Agreement"))
        #expect(!out.contains("Key Encipherment"))
        #expect(text.stderr.contains("verify OK") || text.stdout.contains("verify OK"))
    }

    @Test func onlyPlainMailboxesAreRequested() {
        for bad in ["../x@example.com", "a b@example.com", "a@b", "@example.com", "a@example.com/x", "a@@example.com"] {
            #expect(!CertificateRequest.isPlainMailbox(bad), "\(bad)")
        }
        #expect(CertificateRequest.isPlainMailbox("first.last+tag@mail.example.com"))
    }

    @Test func issuedCertificateMustHoldOurKeyNameTheAddressAndChain() throws {
        let pki = try TestPKI.get()
        let anchors = try TrustStore(anchors: [pki.rootPEM])
        let bobChain = try read(pki.certs + "/bob.pem")
        let bobKey = try NewKey(pem: try read(pki.certs + "/bob.key"))

        let chain = try IssuedCertificate.check(answer: bobChain, key: bobKey, address: "bob@example.com", trustAnchors: anchors)
        #expect(String(decoding: chain, as: UTF8.self).hasPrefix("-----BEGIN CERTIFICATE-----"))

        let other = try NewKey(generating: .p256)
        #expect { try IssuedCertificate.check(answer: bobChain, key: other, address: "bob@example.com", trustAnchors: anchors) }
            throws: { "\($0)".contains("holds our key") }
        #expect { try IssuedCertificate.check(answer: bobChain, key: bobKey, address: "carol@example.com", trustAnchors: anchors) }
            throws: { "\($0)".contains("is not for carol@example.com") }
        #expect { try IssuedCertificate.check(answer: Array("not a certificate".utf8), key: bobKey, address: "bob@example.com", trustAnchors: anchors) }
            throws: { "\($0)".contains("holds no PEM certificate") }

        let mallory = try read(pki.directory + "/other/mallory.pem")
        let malloryKey = try NewKey(pem: mallory)
        #expect { try IssuedCertificate.check(answer: mallory, key: malloryKey, address: "mallory@example.com", trustAnchors: anchors) }
            throws: { "\($0)".contains("does not chain to TrustAnchors") }
    }

    @Test func enrollCommandRefusalCarriesTheProgramsWords() throws {
        let key = try NewKey(generating: .p256)
        let request = try CertificateRequest(address: "dave@example.com", key: key)
        let dir = try TemporaryDirectory(prefix: "enrol")
        let script = dir.path + "/ca.sh"
        FileManager.default.createFile(atPath: script, contents: Data("#!/bin/sh\ncat >/dev/null\necho 'quota exceeded' >&2\nexit 4\n".utf8),
                                       attributes: [.posixPermissions: 0o755])
        #expect { try CommandEnroller(enrolCommand: script, revokeCommand: nil, timeout: 30).enrol(request: request, key: key) }
            throws: { "\($0)".contains("exited with status 4: quota exceeded") }
        let slow = dir.path + "/slow.sh"
        FileManager.default.createFile(atPath: slow, contents: Data("#!/bin/sh\nexec sleep 60\n".utf8),
                                       attributes: [.posixPermissions: 0o755])
        #expect { try CommandEnroller(enrolCommand: slow, revokeCommand: nil, timeout: 1).enrol(request: request, key: key) }
            throws: { "\($0)".contains("did not finish in time") && ($0 as? EnrolmentError)?.temporary == true }
    }
}
