// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import MIME

@Suite struct ContentFieldTests {
    @Test func contentTypeWithQuotedParametersAndComments() throws {
        let ct = try #require(ContentType(parsing: " Multipart/Signed (signed mail); protocol=\"application/pkcs7-signature\";\n\tmicalg=SHA-256; boundary=\"----=_Part_1\" (c)"))
        #expect(ct.mediaType == "multipart/signed")
        #expect(ct.parameter("PROTOCOL") == "application/pkcs7-signature")
        #expect(ct.parameter("micalg") == "SHA-256")
        #expect(ct.boundary == "----=_Part_1")
        #expect(ct.isMultipart)
    }

    @Test func unquotedBoundaryWithEqualsAndQuotedPair() throws {
        let ct = try #require(ContentType(parsing: " multipart/mixed; boundary=----=_NextPart_000_0001; x=\"a\\\"b\""))
        #expect(ct.boundary == "----=_NextPart_000_0001")
        #expect(ct.parameter("x") == "a\"b")
    }

    @Test func charsetWithComment() throws {
        let ct = try #require(ContentType(parsing: "text/plain; charset=us-ascii (Plain text)"))
        #expect(ct.charset == "us-ascii")
        #expect(ct.isText)
    }

    @Test func invalidContentType() {
        #expect(ContentType(parsing: " text") == nil)
        #expect(ContentType(parsing: "") == nil)
        #expect(ContentType.defaultType.mediaType == "text/plain")
        #expect(ContentType.defaultType.charset == "us-ascii")
    }

    @Test func rfc2231ContinuationsAndCharset() throws {
        let cd = try #require(ContentDisposition(parsing: " attachment;\n filename*0*=utf-8''Gr%C3%BC%C3%9Fe%20;\n filename*1=\"und Tsch.pdf\""))
        #expect(cd.type == "attachment")
        #expect(cd.filename == "Grüße und Tsch.pdf")
        let ct = try #require(ContentType(parsing: "application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A"))
        #expect(ct.parameter("title") == "This is ***fun***")
        let both = try #require(ContentDisposition(parsing: "attachment; filename=\"plain.txt\"; filename*=utf-8''%C3%A9.txt"))
        #expect(both.filename == "é.txt")
    }

    @Test func transferEncodings() {
        #expect(TransferEncoding(parsing: " Quoted-Printable") == .quotedPrintable)
        #expect(TransferEncoding(parsing: "BASE64 (comment)") == .base64)
        #expect(TransferEncoding(parsing: "8BIT") == .eightBit)
        #expect(TransferEncoding(parsing: "") == .sevenBit)
        #expect(TransferEncoding(parsing: "x-uuencode") == .other("x-uuencode"))
        #expect(!TransferEncoding.base64.isIdentity)
        #expect(TransferEncoding.binary.isIdentity)
    }
}
