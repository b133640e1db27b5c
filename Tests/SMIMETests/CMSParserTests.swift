// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation
import Testing
@testable import SMIME

/// CMSParser: the ContentInfo it builds from cached certificates is the one d2i_CMS_ContentInfo
/// makes of the input (same DER when written back), and every input it does not handle takes
/// the ordinary path with the ordinary outcome.
@Suite("CMSParser")
struct CMSParserTests {
    static func der(_ cms: OpaquePointer) -> [UInt8] {
        let length = i2d_CMS_ContentInfo(cms, nil)
        guard length > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: Int(length))
        out.withUnsafeMutableBufferPointer { buffer in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            _ = i2d_CMS_ContentInfo(cms, &cursor)
        }
        return out
    }

    static func ordinary(_ der: [UInt8]) -> OpaquePointer? {
        der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_CMS_ContentInfo(nil, &cursor, buffer.count)
        }
    }

    static func certificatePointers(_ cms: OpaquePointer) -> [OpaquePointer] {
        guard let certs = CMS_get1_certs(cms) else { return [] }
        defer { smime_sk_X509_pop_free(certs) }
        return (0..<smime_sk_X509_num(certs)).compactMap { smime_sk_X509_value(certs, $0) }
    }

    static let content = Array("Content-Type: text/plain\r\n\r\nparsed once\r\n".utf8)

    @Test(arguments: ["alice", "bob"])
    func theRebuiltContentInfoWritesBackToTheSameBytes(signer: String) throws {
        let signed = try CMSSigner.sign(content: Self.content, identity: try TestPKI.get().identity(signer),
                                        digest: .sha256, detached: true)
        let split = try #require(CMSParser.split(signed))
        #expect(split.certificates.count == 2)   // signer and intermediate
        #expect(split.stripped.count < signed.count)
        let fast = try #require(CMSParser.parseWithCachedCertificates(signed))
        defer { CMS_ContentInfo_free(fast) }
        let same = Self.der(fast) == signed
        #expect(same)
    }

    @Test func eachCertificateIsDecodedOnceAndShared() throws {
        let identity = try TestPKI.get().identity("alice")
        let first = try CMSSigner.sign(content: Self.content, identity: identity, digest: .sha256, detached: true)
        let second = try CMSSigner.sign(content: Self.content + Array("more\r\n".utf8), identity: identity,
                                        digest: .sha256, detached: true)
        #expect(first != second)
        let a = try #require(CMSParser.parse(first))
        defer { CMS_ContentInfo_free(a) }
        let b = try #require(CMSParser.parse(second))
        defer { CMS_ContentInfo_free(b) }
        let shared = Self.certificatePointers(a)
        #expect(shared.count == 2)
        #expect(shared == Self.certificatePointers(b), "the second message must reuse the decoded certificates")
    }

    @Test func verificationIsTheSameOnBothPaths() throws {
        let pki = try TestPKI.get()
        let verifier = CMSVerifier(trust: try TrustStore(anchors: [pki.rootPEM]))
        let signed = try CMSSigner.sign(content: Self.content, identity: try pki.identity("alice"), digest: .sha256,
                                        detached: true)
        #expect(verifier.verify(signedData: signed, detachedContent: Self.content, at: Date()).status == .verified)
        var changed = Self.content
        changed[changed.count - 3] ^= 0x01
        let tampered = verifier.verify(signedData: signed, detachedContent: changed, at: Date()).status
        #expect(tampered != .verified)
        // The same input with a trailing byte takes the ordinary path (d2i ignores the rest).
        #expect(CMSParser.split(signed + [0]) == nil)
        #expect(verifier.verify(signedData: signed + [0], detachedContent: Self.content, at: Date()).status == .verified)
        #expect(verifier.verify(signedData: signed + [0], detachedContent: changed, at: Date()).status == tampered)
    }

    /// The signer's facts come from the cache entry of the very X509 object the SignedData
    /// carries, read once, and say the same as reading that certificate afresh.
    @Test func signerFactsAreReadOnceFromTheCacheEntry() throws {
        let pki = try TestPKI.get()
        let verifier = CMSVerifier(trust: try TrustStore(anchors: [pki.rootPEM]))
        let identity = try pki.identity("alice")
        let signed = try CMSSigner.sign(content: Self.content, identity: identity, digest: .sha256, detached: true)
        let first = verifier.verify(signedData: signed, detachedContent: Self.content, at: Date())
        let again = verifier.verify(signedData: signed, detachedContent: Self.content, at: Date())
        let fresh = try CertificateInfo(der: Array(try #require(CMSParser.split(signed)).certificates[0]))
        #expect(first.signers.first?.certificate == fresh)
        #expect(again.signers.first?.certificate == fresh)
        #expect(fresh.addresses.contains("alice@example.com"))

        let parsed = try #require(CMSParser.parse(signed))
        defer { CMS_ContentInfo_free(parsed) }
        let pointers = Self.certificatePointers(parsed)
        #expect(pointers.allSatisfy { CMSParser.cache.entry(for: $0) != nil })
        // A certificate decoded elsewhere is not the cache's, even with the same bytes.
        let elsewhere = try #require(Self.ordinary(signed))
        defer { CMS_ContentInfo_free(elsewhere) }
        #expect(Self.certificatePointers(elsewhere).allSatisfy { CMSParser.cache.entry(for: $0) == nil })
    }

    @Test func aCertificateCarriedTwiceTakesTheOrdinaryPath() throws {
        let signed = try CMSSigner.sign(content: Self.content, identity: try TestPKI.get().identity("alice"),
                                        digest: .sha256, detached: true)
        // Rebuild the SignedData with the signer's certificate twice, by the parser's own helpers.
        let withTwice = try #require(Self.replacingCertificates(in: signed) { $0 + [$0[0]] })
        #expect(CMSParser.parseWithCachedCertificates(withTwice) == nil)   // CMS_add1_cert refuses the duplicate
        let parsed = try #require(CMSParser.parse(withTwice))
        defer { CMS_ContentInfo_free(parsed) }
        let expected = try #require(Self.ordinary(withTwice))
        defer { CMS_ContentInfo_free(expected) }
        // Compared with what d2i makes of it (i2d writes a SET OF sorted, so not with the input).
        let same = Self.der(parsed) == Self.der(expected)
        #expect(same)
        #expect(Self.certificatePointers(parsed).count == 3)
    }

    @Test func malformedInputParsesAsD2IParsesIt() throws {
        let signed = try CMSSigner.sign(content: Self.content, identity: try TestPKI.get().identity("bob"),
                                        digest: .sha256, detached: true)
        var inputs: [[UInt8]] = [[], [0x30], [0x30, 0x80, 0x00, 0x00], Array(signed.prefix(signed.count - 7)),
                                 Array(signed.prefix(200)), Array(repeating: 0xFF, count: 64)]
        // A certificate whose length byte is broken, and an indefinite-length (BER) outer header.
        if let flipped = Self.replacingCertificates(in: signed, { [Array($0[0].dropLast(1))] + $0.dropFirst() }) {
            inputs.append(flipped)
        }
        var ber = signed
        if ber.count > 4, ber[1] == 0x82 {
            ber = [0x30, 0x80] + Array(signed[4...]) + [0x00, 0x00]
            inputs.append(ber)
        }
        for input in inputs {
            let expected = Self.ordinary(input)
            defer { if let expected { CMS_ContentInfo_free(expected) } }
            ERR_clear_error()
            let got = CMSParser.parse(input)
            defer { if let got { CMS_ContentInfo_free(got) } }
            #expect((got == nil) == (expected == nil), "input of \(input.count) bytes")
            if let got, let expected {
                let same = Self.der(got) == Self.der(expected)
                #expect(same, "input of \(input.count) bytes")
            }
        }
        #expect(CMSParser.split(ber) == nil)
    }

    /// `der` with its certificates replaced by `change(certificates)`, rebuilt with CMSParser.wrap.
    static func replacingCertificates(in der: [UInt8], _ change: ([[UInt8]]) -> [[UInt8]]) -> [UInt8]? {
        guard let split = CMSParser.split(der) else { return nil }
        let certificates = change(split.certificates.map(Array.init))
        // stripped = SEQUENCE { OID, [0] { SEQUENCE { version, digestAlgorithms, encap, ..., signerInfos } } }
        return split.stripped.withUnsafeBufferPointer { buffer -> [UInt8]? in
            guard let info = CMSParser.element(in: buffer, at: 0, limit: buffer.count),
                  let parts = CMSParser.children(of: info, in: buffer), parts.count == 2,
                  let inner = CMSParser.children(of: parts[1], in: buffer), inner.count == 1,
                  let fields = CMSParser.children(of: inner[0], in: buffer), fields.count >= 4,
                  let set = CMSParser.wrap(certificates.flatMap { $0 }, tag: 0, tagClass: Int32(V_ASN1_CONTEXT_SPECIFIC))
            else { return nil }
            var body: [UInt8] = []
            for (index, field) in fields.enumerated() {
                if index == 3 { body += set }   // after encapContentInfo
                body += split.stripped[field.start..<field.end]
            }
            guard let signedData = CMSParser.wrap(body, tag: V_ASN1_SEQUENCE, tagClass: Int32(V_ASN1_UNIVERSAL)),
                  let explicit = CMSParser.wrap(signedData, tag: 0, tagClass: Int32(V_ASN1_CONTEXT_SPECIFIC))
            else { return nil }
            return CMSParser.wrap(Array(split.stripped[parts[0].start..<parts[0].end]) + explicit,
                                  tag: V_ASN1_SEQUENCE, tagClass: Int32(V_ASN1_UNIVERSAL))
        }
    }
}
