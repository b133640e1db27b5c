// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import SMIME

/// Signatures made by CMSSigner and wrapped by SMIMEWriter, checked by verifiers we did not write.
@Suite("Interoperability")
struct InteropTests {
    static let signers = ["alice", "bob"]
    static let entities: [(String, [UInt8])] = [("text", Samples.text), ("multipart", Samples.multipart)]

    @Test(arguments: signers, DigestAlgorithm.allCases)
    func openSSLVerifiesMultipartSigned(signer: String, digest: DigestAlgorithm) throws {
        let pki = try TestPKI.get()
        let identity = try pki.identity(signer)
        for (label, entity) in Self.entities {
            let (message, _) = try Samples.multipartSignedMessage(entity: entity, identity: identity, digest: digest)
            let verdict = try OpenSSLVerifier.verify(message: message, root: pki.rootPEM)
            #expect(verdict.valid, "\(label): \(verdict.log)")
            #expect(verdict.content == entity, "\(label): OpenSSL saw other signed bytes than the entity")
        }
    }

    @Test(arguments: signers, DigestAlgorithm.allCases)
    func openSSLVerifiesOpaque(signer: String, digest: DigestAlgorithm) throws {
        let pki = try TestPKI.get()
        let identity = try pki.identity(signer)
        for (label, entity) in Self.entities {
            let (message, _) = try Samples.opaqueMessage(entity: entity, identity: identity, digest: digest)
            let verdict = try OpenSSLVerifier.verify(message: message, root: pki.rootPEM)
            #expect(verdict.valid, "\(label): \(verdict.log)")
            #expect(verdict.content == entity, "\(label): extracted content differs")
        }
    }

    @Test(arguments: signers, DigestAlgorithm.allCases)
    func nssVerifiesDetachedAndOpaque(signer: String, digest: DigestAlgorithm) throws {
        let pki = try TestPKI.get()
        let identity = try pki.identity(signer)
        for (label, entity) in Self.entities {
            let detached = try CMSSigner.sign(content: entity, identity: identity, digest: digest, detached: true)
            let verdict = try NSSVerifier.verify(signature: detached, content: entity, root: pki.rootPEM)
            #expect(verdict.valid, "\(label) detached: \(verdict.log)")

            let opaque = try CMSSigner.sign(content: entity, identity: identity, digest: digest, detached: false)
            let opaqueVerdict = try NSSVerifier.verify(signature: opaque, content: nil, root: pki.rootPEM)
            #expect(opaqueVerdict.valid, "\(label) opaque: \(opaqueVerdict.log)")
        }
    }

    @Test(arguments: signers, DigestAlgorithm.allCases)
    func gpgsmVerifiesDetachedAndOpaque(signer: String, digest: DigestAlgorithm) throws {
        let pki = try TestPKI.get()
        let identity = try pki.identity(signer)
        let entity = Samples.multipart
        let detached = try CMSSigner.sign(content: entity, identity: identity, digest: digest, detached: true)
        let verdict = try GPGSMVerifier.verify(signature: detached, content: entity, root: pki.rootPEM)
        #expect(verdict.valid, "detached: \(verdict.log)")

        let opaque = try CMSSigner.sign(content: Samples.text, identity: identity, digest: digest, detached: false)
        let opaqueVerdict = try GPGSMVerifier.verify(signature: opaque, content: nil, root: pki.rootPEM)
        #expect(opaqueVerdict.valid, "opaque: \(opaqueVerdict.log)")
        #expect(opaqueVerdict.content == Samples.text)
    }

    @Test func thePKCS12IdentityAndTheSubjectEmailIdentitySignToo() throws {
        let pki = try TestPKI.get()
        for name in ["carol", "news"] {
            let identity = try pki.identity(name)
            let (message, _) = try Samples.multipartSignedMessage(entity: Samples.text, identity: identity, digest: .sha256)
            let verdict = try OpenSSLVerifier.verify(message: message, root: pki.rootPEM)
            #expect(verdict.valid, "\(name): \(verdict.log)")
        }
    }

    // MARK: the tests can fail

    @Test(arguments: signers)
    func aTamperedEntityFailsVerification(signer: String) throws {
        let pki = try TestPKI.get()
        let identity = try pki.identity(signer)
        let (message, signature) = try Samples.multipartSignedMessage(entity: Samples.text, identity: identity, digest: .sha256)
        // Change one byte of the body of the signed entity inside the message ("Hello" -> "Jello").
        let needle = Array("Hello Bob".utf8)
        let index = try #require(firstIndex(of: needle, in: message))
        var tampered = message
        tampered[index] = UInt8(ascii: "J")
        let verdict = try OpenSSLVerifier.verify(message: tampered, root: pki.rootPEM)
        #expect(!verdict.valid, "a changed byte must break the signature")

        var changedEntity = Samples.text
        let entityIndex = try #require(firstIndex(of: needle, in: changedEntity))
        changedEntity[entityIndex] = UInt8(ascii: "J")
        let nss = try NSSVerifier.verify(signature: signature, content: changedEntity, root: pki.rootPEM)
        #expect(!nss.valid, "NSS must reject a changed entity: \(nss.log)")
    }

    @Test func aSignerFromAnUntrustedRootFailsVerification() throws {
        let pki = try TestPKI.get()
        // mallory chains to other/otherroot.pem, not to the test root.
        let mallory = try IdentityLoader.loadPEM(name: "mallory", certificateFile: pki.directory + "/other/mallory.pem",
                                                 keyFile: nil)
        let (message, _) = try Samples.multipartSignedMessage(entity: Samples.text, identity: mallory, digest: .sha256)
        let verdict = try OpenSSLVerifier.verify(message: message, root: pki.rootPEM)
        #expect(!verdict.valid)
    }

    private func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
