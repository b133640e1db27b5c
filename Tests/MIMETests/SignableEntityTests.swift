// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import MIME

/// Checks that hold for every signable entity: 7-bit (unless a warning says why not), CRLF, no
/// line over 998, no trailing white space or `From ` at a line start in any body.
func expectSignable(_ e: SignableEntity, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(LineEnds.isCRLF(e.bytes), "line ends", sourceLocation: sourceLocation)
    if e.warnings.isEmpty {
        #expect(e.bytes.allSatisfy { $0 < 0x80 && $0 != 0 }, "7-bit", sourceLocation: sourceLocation)
    }
    #expect(crlfLines(e.bytes).allSatisfy { $0.count <= 998 }, "line length", sourceLocation: sourceLocation)
    guard let tree = try? MIMEParser.parse(message: e.bytes) else {
        Issue.record("signable entity does not parse", sourceLocation: sourceLocation)
        return
    }
    for leaf in tree.allEntities where leaf.multipart == nil && leaf.encapsulatedMessage == nil {
        let facts = LineFacts(leaf.body)
        #expect(!facts.hasFromLine && !facts.hasTrailingWhitespace, "body of \(leaf.section)", sourceLocation: sourceLocation)
    }
}

/// The decoded leaves of a tree, by section, with text line ends made CRLF.
func decodedLeaves(_ tree: MIMEEntity) -> [String: [UInt8]] {
    var out = [String: [UInt8]]()
    for e in tree.allEntities where e.multipart == nil && e.encapsulatedMessage == nil {
        out[e.section] = e.contentType.isText ? LineEnds.toCRLF(e.decodedBody) : e.decodedBody
    }
    return out
}

/// The content of every leaf is unchanged by the conversion.
func expectSameContent(fields: [HeaderField], body: [UInt8], _ e: SignableEntity,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
    let before = try MIMEParser.parse(fields: fields, body: body)
    let after = try MIMEParser.parse(message: e.bytes)
    #expect(decodedLeaves(before) == decodedLeaves(after), sourceLocation: sourceLocation)
    #expect(before.allEntities.map(\.contentType.mediaType) == after.allEntities.map(\.contentType.mediaType),
            sourceLocation: sourceLocation)
}

@Suite struct SignableEntityTests {
    @Test func eightBitUTF8Text() throws {
        let (fields, body) = try splitMessage("""
        From: a@example.org
        MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8
        Subject: x
        Content-Transfer-Encoding: 8bit

        Grüße, Jörg
        --\u{20}
        Jörg

        """)
        let e = try SignableEntity.make(fields: fields, body: body)
        #expect(e.movedFieldIndexes == [2, 4])
        #expect(text(e.bytes) == text(bytes("""
        Content-Type: text/plain; charset=utf-8\r
        Content-Transfer-Encoding: quoted-printable\r
        \r
        Gr=C3=BC=C3=9Fe, J=C3=B6rg\r
        --=20\r
        J=C3=B6rg\r

        """)))
        #expect(e.warnings.isEmpty)
        expectSignable(e)
        try expectSameContent(fields: fields, body: body, e)
    }

    @Test func shiftJISText() throws {
        let sjis: [UInt8] = [0x82, 0xB1, 0x82, 0xF1, 0x82, 0xC9, 0x82, 0xBF, 0x82, 0xCD]
        let fields = [HeaderField(name: "Content-Type", value: " text/plain; charset=Shift_JIS"),
                      HeaderField(name: "Content-Transfer-Encoding", value: " 8bit")]
        let body = sjis + Byte.crlf
        let e = try SignableEntity.make(fields: fields, body: body)
        #expect(text(e.bytes) == "Content-Type: text/plain; charset=Shift_JIS\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=82=B1=82=F1=82=C9=82=BF=82=CD\r\n")
        let tree = try MIMEParser.parse(message: e.bytes)
        #expect(tree.contentType.charset == "Shift_JIS")
        #expect(tree.decodedBody == body)
        expectSignable(e)
    }

    @Test func iso2022JPSevenBitIsByteIdentical() throws {
        let jis: [UInt8] = [0x1B, 0x24, 0x42, 0x46, 0x7C, 0x4B, 0x5C, 0x38, 0x6C, 0x1B, 0x28, 0x42]
        let fields = [HeaderField(name: "Subject", value: " test"),
                      HeaderField(name: "Content-Type", value: " text/plain; charset=ISO-2022-JP"),
                      HeaderField(name: "Content-Transfer-Encoding", value: " 7bit")]
        let body = jis + Byte.crlf + jis + Byte.crlf
        let e = try SignableEntity.make(fields: fields, body: body)
        let header = bytes("Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
        #expect(e.bytes == header + body)
        #expect(e.movedFieldIndexes == [1, 2])
        expectSignable(e)
    }

    @Test func alternativeWithRelatedInlineImage() throws {
        let (fields, body) = try splitMessage("""
        MIME-Version: 1.0
        Content-Type: multipart/alternative;
        \tboundary="alt"

        --alt
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: 8bit

        Grüße
        --alt
        Content-Type: multipart/related; boundary="rel"

        --rel
        Content-Type: text/html; charset=utf-8
        Content-Transfer-Encoding: 8bit

        <p>Grüße <img src="cid:logo@x"></p>
        --rel
        Content-Type: image/png
        Content-Transfer-Encoding: base64
        Content-ID: <logo@x>
        Content-Disposition: inline

        iVBORw0KGgo=
        --rel--
        --alt--

        """)
        let e = try SignableEntity.make(fields: fields, body: body)
        #expect(e.movedFieldIndexes == [1])
        #expect(text(e.bytes) == text(crlf("""
        Content-Type: multipart/alternative;
        \tboundary="alt"

        --alt
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: quoted-printable

        Gr=C3=BC=C3=9Fe
        --alt
        Content-Type: multipart/related; boundary="rel"

        --rel
        Content-Type: text/html; charset=utf-8
        Content-Transfer-Encoding: quoted-printable

        <p>Gr=C3=BC=C3=9Fe <img src=3D"cid:logo@x"></p>
        --rel
        Content-Type: image/png
        Content-Transfer-Encoding: base64
        Content-ID: <logo@x>
        Content-Disposition: inline

        iVBORw0KGgo=
        --rel--
        --alt--

        """)))
        expectSignable(e)
        try expectSameContent(fields: fields, body: body, e)
    }

    @Test func base64AttachmentOnlyIsByteExact() throws {
        let b64 = Base64Lines.encode((0..<300).map { UInt8($0 % 256) }) + Byte.crlf
        let fields = [HeaderField(name: "Content-Type", value: " application/pdf; name=\"a.pdf\""),
                      HeaderField(name: "MIME-Version", value: " 1.0"),
                      HeaderField(name: "Content-Disposition", value: " attachment;\n filename=\"a.pdf\""),
                      HeaderField(name: "Content-Transfer-Encoding", value: " base64")]
        let e = try SignableEntity.make(fields: fields, body: b64)
        #expect(e.movedFieldIndexes == [0, 2, 3])
        #expect(e.bytes == bytes("Content-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment;\r\n filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n") + b64)
        expectSignable(e)
    }

    @Test func noMIMEVersionGetsContentType() throws {
        let plain = try SignableEntity.make(fields: [HeaderField(name: "Subject", value: " hi")], body: crlf("hello\n"))
        #expect(text(plain.bytes) == "Content-Type: text/plain; charset=us-ascii\r\n\r\nhello\r\n")
        #expect(plain.movedFieldIndexes.isEmpty)

        let utf8 = try SignableEntity.make(fields: [], body: crlf("h\u{E9}llo\n"))
        #expect(text(utf8.bytes) == "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9llo\r\n")

        let latin1 = try SignableEntity.make(fields: [], body: [0x68, 0xE9, 0x0D, 0x0A])
        #expect(text(latin1.bytes) == "Content-Type: text/plain; charset=unknown-8bit\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nh=E9\r\n")
        expectSignable(latin1)
    }

    /// Stray CRs in a Content-Type (the fuzzer's FuzzSignable finding, reduced) once became CRLFs:
    /// the signed entity's header ended inside the field, the rest of it was read as body. They
    /// are spaces now, at the top level, in a part header and where a charset is added.
    @Test func strayCRInAFieldCannotEndTheHeader() throws {
        let (fields, body) = try MessageParser.split(bytes("Content-Type: text/plain\r\r\r; charset=us-ascii\r\n\r\nhello\r\n"))
        let top = try SignableEntity.make(fields: fields, body: body)
        #expect(text(top.bytes) == "Content-Type: text/plain   ; charset=us-ascii\r\n\r\nhello\r\n")
        #expect(top.warnings.contains { $0.contains("not a fold") && $0.contains("Content-Type") })
        expectSignable(top)

        let eightBit = try MessageParser.split(bytes("Content-Type: text/plain\r\r\n\r\ncaf\u{E9}\r\n"))
        let charset = try SignableEntity.make(fields: eightBit.fields, body: eightBit.body)
        #expect(text(charset.bytes).hasPrefix("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"))

        // The body as the milter holds it (MessageParser.split would complete the CRs).
        let partFields = [HeaderField(name: "Content-Type", value: " multipart/mixed; boundary=\"b\"")]
        let partBody = bytes("--b\r\nContent-Type: text/plain;\r\rname=\"a.txt\"\r\n\r\npart\r\n--b--\r\n")
        let e = try SignableEntity.make(fields: partFields, body: partBody)
        let tree = try MIMEParser.parse(message: e.bytes)
        #expect(tree.multipart?.parts.count == 1)
        #expect(tree.multipart?.parts.first?.contentType.parameter("name") == "a.txt")
        #expect(text(e.bytes).contains("Content-Type: text/plain;  name=\"a.txt\"\r\n\r\npart\r\n"))
        expectSignable(e)
    }

    @Test func charsetAddedOnlyWhenMissingAndEightBit() throws {
        let fields = [HeaderField(name: "Content-Type", value: " text/plain; format=flowed;")]
        let e = try SignableEntity.make(fields: fields, body: crlf("caf\u{E9}\n"))
        #expect(text(e.bytes) == "Content-Type: text/plain; format=flowed; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n")
        let seven = try SignableEntity.make(fields: fields, body: crlf("cafe\n"))
        #expect(text(seven.bytes) == "Content-Type: text/plain; format=flowed;\r\n\r\ncafe\r\n")
    }

    @Test func forwardedMessageWithEightBitInnerBody() throws {
        let (fields, body) = try splitMessage("""
        Content-Type: multipart/mixed; boundary=m
        Content-Transfer-Encoding: 8bit

        --m
        Content-Type: text/plain; charset=us-ascii

        See below.
        --m
        Content-Type: message/rfc822
        Content-Transfer-Encoding: 8bit

        From: Jörg <j@example.org>
        Subject: Grüße
        MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: 8bit

        Hallo Jörg
        --m--

        """)
        let e = try SignableEntity.make(fields: fields, body: body)
        #expect(text(e.bytes) == text(crlf("""
        Content-Type: multipart/mixed; boundary=m
        Content-Transfer-Encoding: 7bit

        --m
        Content-Type: text/plain; charset=us-ascii

        See below.
        --m
        Content-Type: message/rfc822
        Content-Transfer-Encoding: 7bit

        From: Jörg <j@example.org>
        Subject: =?utf-8?B?R3LDvMOfZQ==?=
        MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: quoted-printable

        Hallo J=C3=B6rg
        --m--

        """)))
        #expect(e.warnings == ["8-bit bytes kept in header field From of part 2"])
        expectSignable(e)
        try expectSameContent(fields: fields, body: body, e)
        let inner = try #require(try MIMEParser.parse(message: e.bytes).entity(atSection: "2")?.encapsulatedMessage)
        #expect(EncodedWord.decode(inner.fields.first(named: "Subject")?.unfoldedValue ?? "") == "Grüße")
    }

    @Test func forwardedMessageWithoutMIMEHeadersGainsThem() throws {
        let (fields, body) = try splitMessage("Content-Type: message/rfc822\n\nSubject: old\n\nna\u{EF}ve\n")
        let e = try SignableEntity.make(fields: fields, body: body)
        #expect(text(e.bytes) == text(crlf("Content-Type: message/rfc822\n\nSubject: old\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\nMIME-Version: 1.0\n\nna=C3=AFve\n")))
        expectSignable(e)
    }

    @Test func longLines() throws {
        let line = String(repeating: "abcdefghij", count: 200)   // 2,000 characters
        let text2000 = try SignableEntity.make(fields: [HeaderField(name: "Content-Type", value: " text/plain")], body: crlf(line + "\n"))
        let tree = try MIMEParser.parse(message: text2000.bytes)
        #expect(tree.transferEncoding == .quotedPrintable)
        #expect(crlfLines(Array(tree.body)).allSatisfy { $0.count <= 76 })
        #expect(tree.decodedBody == crlf(line + "\n"))
        expectSignable(text2000)

        let binary = try SignableEntity.make(fields: [HeaderField(name: "Content-Type", value: " application/octet-stream")], body: crlf(line + "\n"))
        let btree = try MIMEParser.parse(message: binary.bytes)
        #expect(btree.transferEncoding == .base64)
        #expect(crlfLines(Array(btree.body)).allSatisfy { $0.count <= 76 })
        #expect(btree.decodedBody == crlf(line + "\n"))
    }

    @Test func bareLFBodyIsCanonicalised() throws {
        let lf = bytes("line one\nline two\n")
        let e = try SignableEntity.make(fields: [HeaderField(name: "Content-Type", value: " text/plain; charset=us-ascii")], body: lf)
        #expect(text(e.bytes) == "Content-Type: text/plain; charset=us-ascii\r\n\r\nline one\r\nline two\r\n")
        // the same message as a multipart with bare LF everywhere
        let (fields, body) = (try splitMessage("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n"))
        let lfBody = body.filter { $0 != 13 }
        let e2 = try SignableEntity.make(fields: fields, body: lfBody)
        #expect(text(e2.bytes) == "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n")
    }

    @Test func fromLinesAndTrailingWhitespaceAreProtected() throws {
        let fields = [HeaderField(name: "Content-Type", value: " text/plain; charset=us-ascii")]
        let e = try SignableEntity.make(fields: fields, body: crlf("Hello\nFrom the team \n\n-- \nSig\t\n"))
        #expect(text(e.bytes) == "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHello\r\n=46rom the team=20\r\n\r\n--=20\r\nSig=09\r\n")
        expectSignable(e)
        // a 7-bit text part without such lines stays as it is
        let clean = try SignableEntity.make(fields: fields, body: crlf("Hello\n-- \n".replacingOccurrences(of: "-- ", with: "--")))
        #expect(text(clean.bytes) == "Content-Type: text/plain; charset=us-ascii\r\n\r\nHello\r\n--\r\n")
        // a non-text 7-bit part with a From line becomes quoted-printable, not base64
        let app = try SignableEntity.make(fields: [HeaderField(name: "Content-Type", value: " application/mbox")], body: crlf("From x\n"))
        #expect(text(app.bytes) == "Content-Type: application/mbox\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=46rom x\r\n")
    }

    @Test func existingQuotedPrintableIsKeptOrReencoded() throws {
        let fields = [HeaderField(name: "Content-Type", value: " text/plain; charset=utf-8"),
                      HeaderField(name: "Content-Transfer-Encoding", value: " quoted-printable")]
        let good = crlf("Gr=C3=BC=C3=9Fe\n")
        #expect(try SignableEntity.make(fields: fields, body: good).bytes
            == bytes("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n") + good)
        // raw 8-bit inside a QP body and a From line: decoded and re-encoded
        let bad = crlf("From me: Gr\u{FC}\u{DF}e\n")
        let e = try SignableEntity.make(fields: fields, body: bad)
        #expect(text(e.bytes) == "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=46rom me: Gr=C3=BC=C3=9Fe\r\n")
    }

    @Test func unterminatedMultipartKeepsStructure() throws {
        let (fields, body) = try splitMessage("Content-Type: multipart/mixed; boundary=b\n\npre \n--b  \nContent-Type: text/plain; charset=utf-8\n\nh\u{E9}\n--b\n\nplain\n")
        let e = try SignableEntity.make(fields: fields, body: body)
        #expect(text(e.bytes) == text(crlf("Content-Type: multipart/mixed; boundary=b\n\npre\n--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nh=C3=A9\n--b\n\nplain\n")))
        expectSignable(e)
    }

    @Test func missingBoundaryWithEightBitThrows() throws {
        let (fields, body) = try splitMessage("Content-Type: multipart/mixed; boundary=nothere\nContent-Transfer-Encoding: 8bit\n\n--b\n\nh\u{E9}\n--b--\n")
        #expect(throws: MIMEError.self) { try SignableEntity.make(fields: fields, body: body) }
        do {
            _ = try SignableEntity.make(fields: fields, body: body)
        } catch {
            #expect("\(error)".contains("boundary never occurs"))
        }
        // the same without 8-bit data is kept as it is (relabelled 7bit)
        let (f2, b2) = try splitMessage("Content-Type: multipart/mixed; boundary=nothere\n\n--b\n\nhe\n--b--\n")
        let e = try SignableEntity.make(fields: f2, body: b2)
        #expect(text(e.bytes) == text(crlf("Content-Type: multipart/mixed; boundary=nothere\n\n--b\n\nhe\n--b--\n")))
    }

    @Test func unknownTransferEncodingWithEightBitThrows() {
        let fields = [HeaderField(name: "Content-Type", value: " text/plain"),
                      HeaderField(name: "Content-Transfer-Encoding", value: " x-weird")]
        #expect(throws: MIMEError.cannotMake7Bit(section: "", reason: "unknown Content-Transfer-Encoding \"x-weird\" over data that is not 7-bit safe")) {
            try SignableEntity.make(fields: fields, body: [0xE9, 0x0D, 0x0A])
        }
        #expect(throws: Never.self) { try SignableEntity.make(fields: fields, body: bytes("ok\r\n")) }
    }

    @Test func binaryAttachmentBecomesBase64() throws {
        let data: [UInt8] = [0x00, 0xFF, 0x0A, 0x0D, 0x41]
        let (fields, body) = try splitMessage("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n")
        let full: [UInt8] = body + data + bytes("\r\n--b--\r\n")
        let e = try SignableEntity.make(fields: fields, body: Array(full))
        #expect(text(e.bytes) == text(crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAP8KDUE=\n--b--\n")))
    }

    @Test func eightBitHeaderFieldsOfParts() throws {
        let (fields, body) = try splitMessage("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/pdf; name=\"Größe.pdf\"\nContent-Description: Größe\nContent-Transfer-Encoding: base64\n\nAAAA\n--b--\n")
        let e = try SignableEntity.make(fields: fields, body: body)
        #expect(text(e.bytes).contains("Content-Description: =?utf-8?B?R3LDtsOfZQ==?=\r\n"))
        #expect(e.warnings == ["8-bit bytes kept in header field Content-Type of part 1"])
        expectSignable(e)
    }

    @Test func fieldsWithoutLeadingSpaceAndLFFoldsAreKept() throws {
        let fields = [HeaderField(name: "Content-Type", value: "text/plain;\n\tcharset=us-ascii")]
        let e = try SignableEntity.make(fields: fields, body: crlf("x\n"))
        #expect(text(e.bytes) == "Content-Type:text/plain;\r\n\tcharset=us-ascii\r\n\r\nx\r\n")
    }

    @Test func sevenBitDataLabelledEightBitIsRelabelled() throws {
        let fields = [HeaderField(name: "Content-Type", value: " text/plain; charset=us-ascii"),
                      HeaderField(name: "Content-Transfer-Encoding", value: " 8bit")]
        let e = try SignableEntity.make(fields: fields, body: crlf("plain\n"))
        #expect(text(e.bytes) == "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\nplain\r\n")
    }

    @Test func latin1HeaderBytesAreEncodedAsUnknown8bit() throws {
        let fields = [HeaderField(name: "Content-Type", value: " text/plain"),
                      HeaderField(name: "Content-Description", rawValue: [0x20, 0x47, 0x72, 0xFC, 0xDF, 0x65])]
        let e = try SignableEntity.make(fields: fields, body: crlf("x\n"))
        #expect(text(e.bytes) == "Content-Type: text/plain\r\nContent-Description: =?unknown-8bit?B?R3L832U=?=\r\n\r\nx\r\n")
        #expect(e.warnings.isEmpty)
    }

    @Test func alreadySigned() {
        func f(_ v: String) -> [HeaderField] { [HeaderField(name: "content-type", value: v)] }
        #expect(SignableEntity.isAlreadySigned(fields: f(" multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=x")))
        #expect(SignableEntity.isAlreadySigned(fields: f(" application/pkcs7-mime; smime-type=signed-data")))
        #expect(SignableEntity.isAlreadySigned(fields: f(" Application/X-PKCS7-MIME")))
        #expect(SignableEntity.isAlreadySigned(fields: f(" application/octet-stream; name=smime.P7M")))
        #expect(!SignableEntity.isAlreadySigned(fields: f(" application/octet-stream; name=a.pdf")))
        #expect(!SignableEntity.isAlreadySigned(fields: f(" multipart/mixed; boundary=x")))
        #expect(!SignableEntity.isAlreadySigned(fields: []))
    }
}
