// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Testing
@testable import SMIME

/// The enveloped messages of ../shared/corpus, opened with the keys given there: the content is
/// what `openssl cms -decrypt` gives, and a valid inner signature passes.
@Suite("Decryption corpus")
struct DecryptionCorpusTests {
    static let keyScratch = try! TemporaryDirectory(prefix: "corpus-keys")

    /// The key named in the row ("decrypt Bob.crt" or "dec:Bob.crt"), loaded as a decryption key.
    static func key(for row: CorpusRow) throws -> (SigningIdentity, String)? {
        let text = row.openSSLResult
        guard let range = text.range(of: "decrypt ") ?? text.range(of: "dec:") else { return nil }
        let name = text[range.upperBound...].prefix { $0 != ")" && $0 != ";" && $0 != " " }
        guard name.hasSuffix(".crt") || name.hasSuffix(".pem"), name != "FAILED" else { return nil }
        let source = String(row.file.prefix { $0 != "/" })
        let dir = Corpus.root + "/keys/" + source
        let stem = String(name.dropLast(4))
        let sharedKey = name == "cert.pem" ? dir + "/key.pem" : dir + "/" + stem + ".key"
        // The corpus is read-only (0444); the loader wants a private key file.
        let keyFile = keyScratch.path + "/" + source + "-" + stem + ".key"
        if !FileManager.default.fileExists(atPath: keyFile) {
            try FileManager.default.copyItem(atPath: sharedKey, toPath: keyFile)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyFile)
        }
        let identity = try IdentityLoader.loadPEM(name: stem, certificateFile: dir + "/" + name, keyFile: keyFile,
                                                  allowExpired: true, forDecryption: true)
        return (identity, keyFile)
    }

    @Test func envelopedCorpusMessagesDecrypt() throws {
        var opened = 0, passed = 0
        var seen = Set<String>()
        for row in try Corpus.rows() where row.isEnveloped && seen.insert(row.file).inserted {
            guard let (identity, keyFile) = try Self.key(for: row) else { continue }
            let message = try Corpus.bytes(row)
            let start = MessageVerifier.startOfHeader(message)
            let entity = try MIMEParser.parse(message: LineEnds.toCRLF(message[start...]))
            let decrypted = try #require(try MessageDecryptor.decrypt(fields: entity.fields, body: Array(entity.body),
                                                                      candidates: [identity], allowWeakCiphers: true,
                                                                      maximumSize: 50 << 20), "\(row.file)")
            // openssl's answer for the same message and key.
            let scratch = try TemporaryDirectory(prefix: "corpus-dec")
            try Data(message[start...]).write(to: URL(fileURLWithPath: scratch.path + "/m.eml"))
            let openssl = try Subprocess.run("openssl", ["cms", "-decrypt", "-binary", "-in", scratch.path + "/m.eml",
                                                         "-inkey", keyFile, "-out", scratch.path + "/out"])
            #expect(openssl.status == 0, "\(row.file): \(openssl.combined)")
            let expected = try [UInt8](Data(contentsOf: URL(fileURLWithPath: scratch.path + "/out")))
            let inner = try MIMEParser.parse(message: LineEnds.toCRLF(expected))
            #expect(decrypted.body == Array(inner.body), "\(row.file)")
            opened += 1
            if row.expected == "valid", row.digest != "sha1" {
                let verifier = MessageVerifier(trust: try TrustStore(anchors: [Corpus.root + "/" + row.trustAnchor]))
                let report = verifier.verify(fields: entity.fields.filter { !$0.name.lowercased().hasPrefix("content-") } + decrypted.fields,
                                             body: decrypted.body, fromAddress: row.signerEmail,
                                             at: Date())   // the manifest checks the chain at the current time
                #expect(report.result == .pass, "\(row.file): \(report.result) \(report.reason ?? "")")
                passed += 1
            }
        }
        print("decryption corpus: opened \(opened), inner signatures passed \(passed)")
        #expect(opened >= 20, "opened \(opened)")
        #expect(passed >= 5, "passed \(passed)")
    }
}
