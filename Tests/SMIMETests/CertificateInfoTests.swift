// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import SMIME

@Suite("CertificateInfo")
struct CertificateInfoTests {
    @Test func readsPEMCertificatesInOrder() throws {
        let pki = try TestPKI.get()
        let pem = try Data(contentsOf: URL(fileURLWithPath: pki.certs + "/alice.pem"))
        let infos = try CertificateInfo.certificates(pem: [UInt8](pem))
        #expect(infos.count == 2)
        #expect(infos[0].addresses == ["alice@example.com"])
        #expect(infos[0].subject == "CN=alice@example.com,O=smime-milter test")
        #expect(!infos[0].isCA && !infos[0].isSelfSigned)
        #expect(infos[1].isCA && !infos[1].isSelfSigned)
        #expect(infos[0].issuer == infos[1].subject)
        #expect(infos[0].keyDescription == "RSA-2048")

        let root = try CertificateInfo.certificates(pem: [UInt8](try Data(contentsOf: URL(fileURLWithPath: pki.rootPEM))))
        #expect(root.count == 1 && root[0].isSelfSigned && root[0].isCA)
        #expect(root[0].keyDescription == "RSA-3072")
    }

    @Test func readsDERAndMatchesOpenSSLsSerial() throws {
        let pki = try TestPKI.get()
        let scratch = try TemporaryDirectory(prefix: "der")
        let der = scratch.path + "/bob.der"
        let converted = try Subprocess.run("openssl", ["x509", "-in", pki.certs + "/bob.pem", "-outform", "DER", "-out", der])
        #expect(converted.status == 0)
        let info = try CertificateInfo(der: [UInt8](try Data(contentsOf: URL(fileURLWithPath: der))))
        let serial = try Subprocess.run("openssl", ["x509", "-in", pki.certs + "/bob.pem", "-noout", "-serial"])
        // openssl prints "serial=0A1B..." (with leading zero pairs); compare as numbers.
        let printed = serial.stdout.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: "")
        #expect(printed.drop { $0 == "0" } == Substring(info.serialHex.drop { $0 == "0" }))
        #expect(info.keyDescription == "EC-P-256")
        #expect(info.addresses == ["bob@example.com"])
    }

    @Test func garbageIsAnErrorNotACrash() {
        #expect(throws: SMIMEError.self) { try CertificateInfo(der: [0x30, 0x82, 0xFF, 0xFF, 0x01]) }
        #expect(throws: SMIMEError.self) { try CertificateInfo(der: []) }
        #expect((try? CertificateInfo.certificates(pem: Array("garbage".utf8)))?.isEmpty == true)
    }
}
