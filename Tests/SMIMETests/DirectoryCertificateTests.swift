// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import SMIME

/// The two forms an LDAP directory holds certificates in, made by openssl from the test PKI.
@Suite("Directory certificate values")
struct DirectoryCertificateTests {
    @Test func pkcs7BagIsReadEndEntityFirstAndADERCertificateAlone() throws {
        let pki = try TestPKI.get()
        let scratch = try TemporaryDirectory(prefix: "dir-certs")
        let alicePEM = scratch.path + "/alice.crt"
        let x509 = try Subprocess.run("openssl", ["x509", "-in", pki.certs + "/alice.pem", "-out", alicePEM])
        #expect(x509.status == 0, "\(x509.combined)")
        // userSMIMECertificate (RFC 2798): a certs-only PKCS#7, here with the CA first.
        let bag = scratch.path + "/bag.p7"
        let made = try Subprocess.run("openssl", ["crl2pkcs7", "-nocrl", "-certfile", pki.directory + "/intermediate.pem",
                                                  "-certfile", alicePEM, "-outform", "DER", "-out", bag])
        #expect(made.status == 0, "\(made.combined)")
        let fromBag = try RecipientCertificate.certificates(directoryValue: [UInt8](try Data(contentsOf: URL(fileURLWithPath: bag))))
        #expect(fromBag.count == 2)
        #expect(fromBag.first?.info.addresses == ["alice@example.com"])
        #expect(fromBag.last?.info.isCA == true)
        // userCertificate;binary: one DER certificate.
        let der = scratch.path + "/alice.der"
        _ = try Subprocess.run("openssl", ["x509", "-in", alicePEM, "-outform", "DER", "-out", der])
        let single = try RecipientCertificate.certificates(directoryValue: [UInt8](try Data(contentsOf: URL(fileURLWithPath: der))))
        #expect(single.count == 1 && single[0].fingerprint == fromBag[0].fingerprint)
        // Neither: a clear error, no crash.
        #expect(throws: SMIMEError.self) { try RecipientCertificate.certificates(directoryValue: Array("not a certificate".utf8)) }
        #expect(throws: SMIMEError.self) { try RecipientCertificate.certificates(directoryValue: [0x30, 0x03, 0x02, 0x01, 0x00]) }
    }
}
