// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import MIME

@Suite struct MIMEParserTests {
    static let signed = """
    Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="sig"

    This is an S/MIME signed message
    --sig
    Content-Type: text/plain

    This is some sample content.
    --sig\t 
    Content-Type: application/pkcs7-signature; name=smime.p7s
    Content-Transfer-Encoding: base64

    MIIB
    --sig--
    epilogue

    """

    @Test func multipartSignedPartOneRawRangeExcludesDelimiterCRLF() throws {
        let (fields, body) = try splitMessage(Self.signed)
        let top = try MIMEParser.parse(fields: fields, body: body)
        #expect(top.contentType.mediaType == "multipart/signed")
        #expect(top.role == .topLevel)
        #expect(top.bodySection == "TEXT")
        let m = try #require(top.multipart)
        #expect(m.boundary == "sig")
        #expect(m.parts.count == 2)
        #expect(m.isTerminated)
        #expect(text(body[m.preambleRange]) == "This is an S/MIME signed message")
        #expect(text(body[m.epilogueRange]) == "epilogue\r\n")
        let p1 = m.parts[0]
        #expect(p1.section == "1")
        #expect(text(p1.rawBytes) == "Content-Type: text/plain\r\n\r\nThis is some sample content.")
        #expect(text(p1.headerBytes) == "Content-Type: text/plain\r\n")
        #expect(text(p1.body) == "This is some sample content.")
        let p2 = m.parts[1]
        #expect(p2.section == "2")
        #expect(p2.contentType.mediaType == "application/pkcs7-signature")
        #expect(p2.transferEncoding == .base64)
        #expect(text(p2.body) == "MIIB")
        #expect(p2.decodedBody == [0x30, 0x82, 0x01])
        // transport padding after the second delimiter is part of the delimiter
        #expect(text(body[m.delimiterRanges[1]]) == "\r\n--sig\t \r\n")
        #expect(m.closeDelimiterRange.map { text(body[$0]) } == "\r\n--sig--\r\n")
    }

    @Test func spansCoverTheBodyExactly() throws {
        let (fields, body) = try splitMessage(Self.signed)
        let m = try #require(try MIMEParser.parse(fields: fields, body: body).multipart)
        var rebuilt = Array(body[m.preambleRange])
        for (d, p) in zip(m.delimiterRanges, m.parts) {
            rebuilt += body[d]
            rebuilt += p.rawBytes
        }
        rebuilt += body[try #require(m.closeDelimiterRange)]
        rebuilt += body[m.epilogueRange]
        #expect(rebuilt == body)
    }

    @Test func boundaryPrefixLinesAreContent() throws {
        let msg = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\n--bx is not a delimiter\n--b -- neither\n--b--\n"
        let (fields, body) = try splitMessage(msg)
        let top = try MIMEParser.parse(fields: fields, body: body)
        #expect(top.parts.count == 1)
        #expect(text(top.parts[0].body) == "--bx is not a delimiter\r\n--b -- neither")
    }

    @Test func nestedSectionsAndEncapsulatedMessage() throws {
        let msg = """
        Content-Type: multipart/mixed; boundary=outer

        --outer
        Content-Type: multipart/alternative; boundary=alt

        --alt
        Content-Type: text/plain

        plain
        --alt
        Content-Type: multipart/related; boundary=rel

        --rel
        Content-Type: text/html

        <img src="cid:i">
        --rel
        Content-Type: image/png
        Content-ID: <i>
        Content-Transfer-Encoding: base64

        iVBORw0KGgo=
        --rel--
        --alt--
        --outer
        Content-Type: message/rfc822

        From: x@y.example
        Subject: fwd
        Content-Type: multipart/mixed; boundary=inner

        --inner

        inner text
        --inner
        Content-Type: application/octet-stream

        data
        --inner--
        --outer--
        """
        let (fields, body) = try splitMessage(msg)
        let top = try MIMEParser.parse(fields: fields, body: body)
        let sections = top.allEntities.map { "\($0.section)=\($0.contentType.mediaType)" }
        #expect(sections == [
            "=multipart/mixed", "1=multipart/alternative", "1.1=text/plain", "1.2=multipart/related",
            "1.2.1=text/html", "1.2.2=image/png", "2=message/rfc822", "2=multipart/mixed",
            "2.1=text/plain", "2.2=application/octet-stream",
        ])
        let fwd = try #require(top.entity(atSection: "2"))
        let inner = try #require(fwd.encapsulatedMessage)
        #expect(inner.role == .encapsulatedMessage)
        #expect(inner.bodySection == "2.TEXT")
        #expect(inner.fields.first(named: "Subject")?.value == " fwd")
        #expect(text(try #require(top.entity(atSection: "2.1")).body) == "inner text")
        #expect(try #require(top.entity(atSection: "1.2.2")).decodedBody == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(inner.depth == 2)
        #expect(top.entity(atSection: "2.1")?.depth == 3)
    }

    @Test func missingCloseDelimiterIsTolerated() throws {
        let (fields, body) = try splitMessage("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n")
        let top = try MIMEParser.parse(fields: fields, body: body)
        #expect(top.defects.contains(.missingCloseDelimiter))
        #expect(top.parts.count == 2)
        #expect(text(top.parts[1].body) == "two\r\n")
        #expect(top.multipart?.isTerminated == false)
    }

    @Test func boundaryThatNeverAppearsGivesLeaf() throws {
        let (fields, body) = try splitMessage("Content-Type: multipart/mixed; boundary=nothere\n\n--other\n\ntext\n")
        let top = try MIMEParser.parse(fields: fields, body: body)
        #expect(top.defects.contains(.boundaryNotFound))
        #expect(top.parts.isEmpty)
        #expect(top.body.elementsEqual(body))
        let (f2, b2) = try splitMessage("Content-Type: multipart/mixed\n\n--b\n\ntext\n")
        #expect(try MIMEParser.parse(fields: f2, body: b2).defects.contains(.missingBoundary))
    }

    @Test func digestDefaultsToMessage() throws {
        let (fields, body) = try splitMessage("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody one\n--d--\n")
        let top = try MIMEParser.parse(fields: fields, body: body)
        #expect(top.parts[0].contentType.mediaType == "message/rfc822")
        #expect(top.parts[0].encapsulatedMessage?.fields.first(named: "subject")?.value == " one")
    }

    static func nested(_ levels: Int) -> (fields: [HeaderField], body: [UInt8]) {
        var body = "leaf\n"
        for level in (0..<levels).reversed() {
            body = "--b\(level)\nContent-Type: multipart/mixed; boundary=b\(level + 1)\n\n\(body)--b\(level)--\n"
        }
        let fields = [HeaderField(name: "Content-Type", value: " multipart/mixed; boundary=b0")]
        return (fields, crlf(body))
    }

    @Test func thousandNestedMultipartsThrowTooDeep() {
        let (fields, body) = Self.nested(1_000)
        #expect(throws: MIMEError.tooDeep(limit: 64)) { try MIMEParser.parse(fields: fields, body: body) }
        #expect(throws: MIMEError.tooDeep(limit: MIMELimits.depthCap)) {
            try MIMEParser.parse(fields: fields, body: body, limits: MIMELimits(maxDepth: 1_000_000))
        }
        #expect(throws: MIMEError.tooDeep(limit: 64)) { try SignableEntity.make(fields: fields, body: body) }
    }

    @Test func nestingWithinLimitsParses() throws {
        let (fields, body) = Self.nested(40)
        let top = try MIMEParser.parse(fields: fields, body: body)
        let deepest = try #require(top.allEntities.last)
        #expect(deepest.depth == 40)
        #expect(deepest.section == Array(repeating: "1", count: 40).joined(separator: "."))
        #expect(text(deepest.body).hasPrefix("leaf"))
    }

    @Test func partCountLimit() throws {
        let parts = (0..<50).map { "--b\n\npart \($0)\n" }.joined()
        let (fields, body) = try splitMessage("Content-Type: multipart/mixed; boundary=b\n\n\(parts)--b--\n")
        #expect(try MIMEParser.parse(fields: fields, body: body).parts.count == 50)
        #expect(throws: MIMEError.tooManyParts(limit: 20)) {
            try MIMEParser.parse(fields: fields, body: body, limits: MIMELimits(maxParts: 20))
        }
    }

    @Test func partWithoutBlankLineAndEmptyParts() throws {
        let (fields, body) = try splitMessage("Content-Type: multipart/mixed; boundary=b\n\n--b\nnot a header line\n--b\n--b\nContent-Type: text/plain\n--b--")
        let top = try MIMEParser.parse(fields: fields, body: body)
        #expect(top.parts.count == 3)
        #expect(top.parts[0].defects.contains(.missingBlankLine))
        #expect(text(top.parts[0].body) == "not a header line")
        #expect(top.parts[1].rawBytes.isEmpty)
        #expect(top.parts[2].fields.count == 1)
        #expect(top.parts[2].body.isEmpty)
    }

    @Test func parseWholeMessageKeepsHeaderRange() throws {
        let raw = bytes("Subject: x\nContent-Type: text/plain\n\nhello\n")
        let top = try MIMEParser.parse(message: raw)
        #expect(text(top.headerBytes) == "Subject: x\nContent-Type: text/plain\n")
        #expect(text(top.body) == "hello\n")
    }
}
