// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import SMIME

@Suite("CMSSigner")
struct CMSSignerTests {
    @Test(arguments: ["alice", "bob"])
    func signatureHasTheSignedAttributesAndTheChainWithoutRoot(signer: String) throws {
        let pki = try TestPKI.get()
        let identity = try pki.identity(signer)
        let der = try CMSSigner.sign(content: Samples.text, identity: identity, digest: .sha384, detached: true)
        let printed = try OpenSSLVerifier.print(der: der)

        #expect(printed.contains("eContent: <ABSENT>"))
        let signedAttributes = try #require(printed.range(of: "signedAttrs:")).upperBound
        let attributes = String(printed[signedAttributes...]).components(separatedBy: "signatureAlgorithm:").first ?? ""
        for name in ["contentType", "messageDigest", "signingTime", "S/MIME Capabilities"] {
            #expect(attributes.contains("object: \(name)"), "missing \(name) in \(attributes)")
        }
        #expect(printed.contains("sha384"))

        // Certificates: the signer and the intermediate, never the root.
        let subjects = printed.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("subject:") }
        #expect(subjects.count == 2, "\(subjects)")
        #expect(subjects.contains { $0.contains("CN=\(identity.addresses[0])") })
        #expect(subjects.contains { $0.contains("Test Issuing CA") })
        #expect(!subjects.contains { $0.contains("Test Root CA") })
    }

    @Test func opaqueSignatureCarriesTheContent() throws {
        let identity = try TestPKI.get().identity("bob")
        let der = try CMSSigner.sign(content: Samples.text, identity: identity, digest: .sha256, detached: false)
        let printed = try OpenSSLVerifier.print(der: der)
        #expect(!printed.contains("eContent: <ABSENT>"))
        #expect(printed.contains("eContent:"))
        #expect(printed.contains("ecdsa-with-SHA256") || printed.contains("id-ecPublicKey"), "\(printed.prefix(3000))")
    }

    @Test func rootsInTheIdentityFileAreNotSent() throws {
        let pki = try TestPKI.get()
        let dir = try TemporaryDirectory(prefix: "withroot")
        let alice = try Data(contentsOf: URL(fileURLWithPath: pki.certs + "/alice.pem"))
        let root = try Data(contentsOf: URL(fileURLWithPath: pki.rootPEM))
        try dir.write("alice.pem", [UInt8](alice) + [UInt8](root))
        let identity = try IdentityLoader.load(name: "alice", directory: dir.path)
        #expect(identity.chainSubjects.count == 1)
        #expect(!identity.chainSubjects.contains { $0.contains("Root CA") })
        let printed = try OpenSSLVerifier.print(
            der: try CMSSigner.sign(content: Samples.text, identity: identity, digest: .sha256, detached: true))
        #expect(!printed.contains("subject: O=smime-milter test, CN=smime-milter Test Root CA"))
    }

    @Test func concurrentSigningWithOneIdentityAllVerifies() async throws {
        let pki = try TestPKI.get()
        for name in ["alice", "bob"] {
            let identity = try pki.identity(name)
            let entities = (0..<16).map { index in
                Array("Content-Type: text/plain\r\n\r\nmessage number \(index)\r\n".utf8)
            }
            let messages = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
                for (index, entity) in entities.enumerated() {
                    group.addTask {
                        let digest = DigestAlgorithm.allCases[index % DigestAlgorithm.allCases.count]
                        return (index, try Samples.multipartSignedMessage(entity: entity, identity: identity, digest: digest).message)
                    }
                }
                var collected: [Int: [UInt8]] = [:]
                for try await (index, message) in group { collected[index] = message }
                return collected
            }
            #expect(messages.count == entities.count)
            for (index, message) in messages.sorted(by: { $0.key < $1.key }) {
                let verdict = try OpenSSLVerifier.verify(message: message, root: pki.rootPEM)
                #expect(verdict.valid, "\(name) #\(index): \(verdict.log)")
                #expect(verdict.content == entities[index])
            }
        }
    }

    @Test func concurrentSigningOnPlainThreads() throws {
        let identity = try TestPKI.get().identity("alice")
        let results = LockedValue<[Int: [UInt8]]>([:])
        let group = DispatchGroup()
        for index in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                let entity = Array("Content-Type: text/plain\r\n\r\nthread \(index)\r\n".utf8)
                if let der = try? CMSSigner.sign(content: entity, identity: identity, digest: .sha256, detached: true) {
                    results.update { $0[index] = der }
                }
            }
        }
        group.wait()
        let pki = try TestPKI.get()
        for (index, der) in results.get() {
            let entity = Array("Content-Type: text/plain\r\n\r\nthread \(index)\r\n".utf8)
            let verdict = try NSSVerifier.verify(signature: der, content: entity, root: pki.rootPEM)
            #expect(verdict.valid, "thread \(index): \(verdict.log)")
        }
        #expect(results.get().count == 8)
    }

    @Test func concurrentVerificationOnPlainThreadsSharingOneTrustStore() throws {
        // As libmilter's threads verify: one trust store and one certificate cache for all,
        // the same signer's certificates decoded once and handed to every thread.
        let pki = try TestPKI.get()
        let verifier = CMSVerifier(trust: try TrustStore(anchors: [pki.rootPEM]))
        let signatures = try ["alice", "bob"].map { name in
            let entity = Array("Content-Type: text/plain\r\n\r\nsigned by \(name)\r\n".utf8)
            return (entity, try CMSSigner.sign(content: entity, identity: try pki.identity(name), digest: .sha256, detached: true))
        }
        let outcomes = LockedValue<[String: Int]>([:])
        let group = DispatchGroup()
        for index in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                for round in 0..<100 {
                    let (entity, der) = signatures[(index + round) % 2]
                    let good = verifier.verify(signedData: der, detachedContent: entity, at: Date()).status
                    let altered = verifier.verify(signedData: der, detachedContent: entity + [0x0A], at: Date()).status
                    outcomes.update { $0["\(good) \(altered)", default: 0] += 1 }
                }
            }
        }
        group.wait()
        #expect(outcomes.get() == ["\(CMSVerification.Status.verified) \(CMSVerification.Status.contentAltered)": 800])
    }

    @Test func emptyContentCanBeSigned() throws {
        let pki = try TestPKI.get()
        let der = try CMSSigner.sign(content: [], identity: try pki.identity("bob"), digest: .sha512, detached: false)
        #expect(!der.isEmpty)
        #expect(try OpenSSLVerifier.print(der: der).contains("signedAttrs:"))
    }

    @Test(arguments: ["alice", "bob"])
    func contentWrittenInPiecesSignsLikeTheWhole(signer: String) throws {
        let pki = try TestPKI.get()
        let identity = try pki.identity(signer)
        let content = Samples.text + Array(repeating: UInt8(ascii: "x"), count: 5000)
        let der = try CMSSigner.sign(identity: identity, digest: .sha256, detached: true) { write in
            var offset = 0
            for size in [0, 1, 7, 4096, 100_000] where offset < content.count {
                let end = min(offset + size, content.count)
                try content[offset..<end].withUnsafeBytes { try write($0) }
                offset = end
            }
            try content[offset...].withUnsafeBytes { try write($0) }
        }
        let verifier = CMSVerifier(trust: try TrustStore(anchors: [pki.rootPEM]))
        #expect(verifier.verify(signedData: der, detachedContent: content, at: Date()).status == .verified)
        var other = content
        other[other.count - 1] = UInt8(ascii: "y")
        #expect(verifier.verify(signedData: der, detachedContent: other, at: Date()).status == .contentAltered)
    }
}
