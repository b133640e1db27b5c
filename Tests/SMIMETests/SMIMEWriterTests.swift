// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import SMIME

@Suite("SMIMEWriter")
struct SMIMEWriterTests {
    let signature: [UInt8] = (0..<700).map { UInt8($0 % 256) }

    @Test func multipartSignedLayout() throws {
        let entity = Samples.text
        let result = try SMIMEWriter.multipartSigned(entity: entity, signature: signature, digest: .sha512)
        #expect(result.contentType.hasPrefix("multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-512; boundary=\""))
        let boundary = try #require(boundaryParameter(in: result.contentType))
        #expect(boundary.hasPrefix(SMIMEWriter.boundaryPrefix))
        #expect(boundary.count > SMIMEWriter.boundaryPrefix.count + 16)

        let text = String(decoding: result.body, as: UTF8.self)
        let expectedStart = SMIMEWriter.preamble + "\r\n\r\n--" + boundary + "\r\n" + String(decoding: entity, as: UTF8.self)
            + "\r\n--" + boundary + "\r\n"
            + "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
            + "Content-Transfer-Encoding: base64\r\n"
            + "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n"
        #expect(text.hasPrefix(expectedStart))
        #expect(text.hasSuffix("\r\n--" + boundary + "--\r\n"))

        // The base64 block decodes to the signature, in lines of at most 76 characters.
        let base64 = text.dropFirst(expectedStart.count).dropLast(("\r\n--" + boundary + "--\r\n").count)
        let lines = base64.components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.count <= 76 && !$0.isEmpty })
        #expect(lines.dropLast().allSatisfy { $0.count == 76 })
        #expect(Data(base64Encoded: lines.joined()).map { [UInt8]($0) } == signature)

        // Every line ends in CRLF: no bare LF or CR.
        #expect(bareLineEnds(in: result.body) == 0)
    }

    @Test func generatedBoundariesDifferAndAvoidTheEntity() throws {
        let first = try SMIMEWriter.multipartSigned(entity: Samples.text, signature: signature, digest: .sha256)
        let second = try SMIMEWriter.multipartSigned(entity: Samples.text, signature: signature, digest: .sha256)
        #expect(boundaryParameter(in: first.contentType) != boundaryParameter(in: second.contentType))
        let b = try #require(boundaryParameter(in: first.contentType))
        #expect(!String(decoding: Samples.text, as: UTF8.self).contains(b))
    }

    @Test func aGivenBoundaryIsCheckedAgainstTheEntity() throws {
        let entity = Array("Content-Type: text/plain\r\n\r\n--fixed-boundary\r\n".utf8)
        #expect(throws: SMIMEError.self) {
            try SMIMEWriter.multipartSigned(entity: entity, signature: signature, digest: .sha256, boundary: "fixed-boundary")
        }
        #expect(throws: SMIMEError.self) {
            try SMIMEWriter.multipartSigned(entity: entity, signature: signature, digest: .sha256, boundary: "bad\"quote")
        }
        #expect(throws: SMIMEError.self) {
            try SMIMEWriter.multipartSigned(entity: entity, signature: signature, digest: .sha256,
                                            boundary: String(repeating: "x", count: 71))
        }
        let ok = try SMIMEWriter.multipartSigned(entity: entity, signature: signature, digest: .sha384, boundary: "other")
        #expect(ok.contentType.hasSuffix("micalg=sha-384; boundary=\"other\""))
    }

    @Test func opaqueLayout() throws {
        let result = SMIMEWriter.opaque(signedData: signature)
        #expect(result.contentType == "application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"")
        #expect(result.contentTransferEncoding == "base64")
        #expect(result.contentDisposition == "attachment; filename=\"smime.p7m\"")
        let text = String(decoding: result.body, as: UTF8.self)
        #expect(text.hasSuffix("\r\n"))
        let lines = text.components(separatedBy: "\r\n").dropLast()
        #expect(lines.allSatisfy { $0.count <= 76 })
        #expect(Data(base64Encoded: lines.joined()).map { [UInt8]($0) } == signature)
        #expect(bareLineEnds(in: result.body) == 0)
    }

    private func boundaryParameter(in contentType: String) -> String? {
        guard let range = contentType.range(of: "boundary=\"") else { return nil }
        return String(contentType[range.upperBound...].prefix { $0 != "\"" })
    }

    private func bareLineEnds(in bytes: [UInt8]) -> Int {
        var count = 0
        for (index, byte) in bytes.enumerated() {
            if byte == 0x0A && (index == 0 || bytes[index - 1] != 0x0D) { count += 1 }
            if byte == 0x0D && (index + 1 == bytes.count || bytes[index + 1] != 0x0A) { count += 1 }
        }
        return count
    }
}
