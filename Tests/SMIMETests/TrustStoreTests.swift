// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import SMIME

@Suite("TrustStore")
struct TrustStoreTests {
    @Test func loadsAFileAndADirectory() throws {
        let pki = try TestPKI.get()
        let fromFile = try TrustStore(anchors: [pki.rootPEM])
        #expect(fromFile.anchorSubjects.count == 1)
        #expect(fromFile.anchorSubjects[0].contains("Test Root CA"))
        let dir = try TemporaryDirectory(prefix: "anchors")
        try dir.write("root.pem", [UInt8](try Data(contentsOf: URL(fileURLWithPath: pki.rootPEM))))
        try dir.write("other.pem", [UInt8](try Data(contentsOf: URL(fileURLWithPath: pki.directory + "/other/otherroot.pem"))))
        try dir.write("README", Array("not a certificate".utf8))
        let fromDir = try TrustStore(anchors: [dir.path])
        #expect(fromDir.anchorSubjects.count == 2)
        #expect(fromDir.problems.count == 1 && fromDir.problems[0].contains("README"))
    }

    @Test func noCertificateIsAnError() throws {
        let dir = try TemporaryDirectory(prefix: "empty")
        let file = try dir.write("empty.pem", Array("nothing here".utf8))
        #expect(throws: SMIMEError.self) { try TrustStore(anchors: [file]) }
        #expect(throws: SMIMEError.self) { try TrustStore(anchors: [dir.path + "/missing.pem"]) }
    }

    @Test func crlDirectoryRevokesTheCorpusSigner() throws {
        // The bc-java validator root with its CRL loaded from a CRL directory (DER), not the bundle.
        let base = Corpus.root + "/bc-java/mail/src/test/resources/org/bouncycastle/mail/smime/test/"
        let crls = try TemporaryDirectory(prefix: "crl")
        try crls.write("revoked.crl", [UInt8](try Data(contentsOf: URL(fileURLWithPath: base + "validator.revoked.crl"))))
        let store = try TrustStore(anchors: [Corpus.root + "/anchors/bc-java/validator.root.crt.pem"], crlDirectory: crls.path)
        #expect(store.crlCount == 1)
        let message = [UInt8](try Data(contentsOf: URL(fileURLWithPath: base + "validator.revoked.eml")))
        let verifier = MessageVerifier(trust: store, options: VerificationOptions(allowWeakAlgorithms: true))
        let report = verifier.verify(message: message, at: Date())
        #expect(report.result == .fail)
        #expect(report.reason?.contains("revoked") == true, "\(report.reason ?? "")")
    }
}
