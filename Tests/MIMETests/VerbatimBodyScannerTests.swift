// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import MIME

@Suite struct VerbatimBodyScannerTests {
    /// Scans `body` fed in pieces of `piece` bytes.
    func scan(_ fields: [HeaderField], _ body: [UInt8], needle: String = "", piece: Int = 5) -> (verbatim: Bool, containsNeedle: Bool) {
        var scanner = VerbatimBodyScanner(fields: fields, needle: Array(needle.utf8))
        var i = 0
        while i < body.count {
            let end = min(i + piece, body.count)
            body[i..<end].withUnsafeBytes { scanner.feed($0) }
            i = end
        }
        return scanner.finish()
    }

    static let messages: [String] = [
        "From: a@b.example\nContent-Type: text/plain\n\nHello\nworld\n",
        "From: a@b.example\n\nno content type\n",
        "From: a@b.example\nContent-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\nseven bit after all\n",
        "From: a@b.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\npreamble\n--XX\nContent-Type: text/plain\n\none\n--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAECAwQF\n--XX--\nepilogue\n",
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner body\n--XX--\n",
        // A ruler line in a text part is not a delimiter.
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\n\ntext\n----------\nruler\n--XX--\n",
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: multipart/alternative;\n boundary=YY\n\n--YY\n\ninner\n--YY--\n--XX--\n",
    ]

    /// The scanner's promise: when it says verbatim, the entity is the converted header plus
    /// the body exactly as it came.
    @Test(arguments: messages)
    func verbatimMeansTheEntityIsTheHeaderPlusTheBody(message: String) throws {
        let (fields, body) = try splitMessage(message)
        let result = scan(fields, body)
        #expect(result.verbatim)
        let whole = try SignableEntity.make(fields: fields, body: body).bytes
        let header = try SignableEntity.make(fields: fields, body: []).bytes
        #expect(whole == header + body)
    }

    static let changed: [String] = [
        "From: a@b.example\nContent-Type: text/plain; charset=utf-8\n\ncaf\u{e9}\n",
        "From: a@b.example\n\ntrailing space \n",
        "From: a@b.example\n\nFrom the start\n",
        "From: a@b.example\n\n" + String(repeating: "x", count: 1200) + "\n",
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\nContent-Transfer-Encoding: 8bit\n\nplain\n--XX--\n",
        "From: a@b.example\nContent-Type: message/rfc822\n\nSubject: inner\n\nbody\n",
    ] + whiteSpaceBeforeTheColon

    /// A field inside with white space before its colon (FuzzSignable): written as `name:`.
    static let whiteSpaceBeforeTheColon: [String] = [
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nX-Note :kept?\n\nx\n--XX--\n",
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: message/rfc822\n\nSubject\t: inner\n\nbody\n--XX--\n",
    ]

    /// Each of those really is changed by the converter, so "not verbatim" is the right answer.
    @Test(arguments: whiteSpaceBeforeTheColon)
    func fieldsWithWhiteSpaceBeforeTheColonAreRewritten(message: String) throws {
        let (fields, body) = try splitMessage(message)
        let whole = try SignableEntity.make(fields: fields, body: body).bytes
        let header = try SignableEntity.make(fields: fields, body: []).bytes
        #expect(whole != header + body)
        #expect(!scan(fields, body).verbatim)
    }

    @Test(arguments: changed)
    func bodiesTheConverterWouldChangeAreNotVerbatim(message: String) throws {
        let (fields, body) = try splitMessage(message)
        #expect(!scan(fields, body).verbatim)
    }

    /// Headers inside the body that do not end with a blank line: the converter ends them with
    /// one (found by the FuzzSignable differential target), so the body is not kept.
    static let headerWithoutBlankLine: [String] = [
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\nnot a field\n--XX--\n",
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\n continuation first\n\nx\n--XX--\n",
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n--XX--\n",
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: message/rfc822\n\nSubject: inner\nno blank line\n--XX--\n",
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: multipart/alternative;\n boundary=YY\n\n--YY\nContent-Type: text/plain\nno blank line\n--YY--\n--XX--\n",
        "From: a@b.example\nContent-Type: multipart/digest; boundary=XX\n\n--XX\n\nSubject: digested\nno blank line\n--XX--\n",
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain",
    ]

    @Test(arguments: headerWithoutBlankLine)
    func headersInsideWithoutBlankLineAreNotVerbatim(message: String) throws {
        let (fields, body) = try splitMessage(message)
        // Each is a body the converter really changes, so "not verbatim" is required, not just allowed.
        let whole = try SignableEntity.make(fields: fields, body: body).bytes
        let header = try SignableEntity.make(fields: fields, body: []).bytes
        #expect(whole != header + body)
        for piece in [1, 5, body.count] { #expect(!scan(fields, body, piece: piece).verbatim) }
    }

    @Test func bareLineEndsAreNotVerbatim() {
        #expect(!scan([], Array("one\ntwo\r\n".utf8)).verbatim)
        #expect(!scan([], Array("one\rtwo\r\n".utf8)).verbatim)
        #expect(scan([], Array("one\r\ntwo".utf8)).verbatim)
    }

    @Test func theNeedleIsFoundAcrossPieces() {
        let body = Array("abc\r\nxx----=_smime_boundary yy\r\n".utf8)
        for piece in [1, 3, 7, 64] {
            #expect(scan([], body, needle: "----=_smime_boundary", piece: piece).containsNeedle)
            #expect(!scan([], body, needle: "----=_smime_other", piece: piece).containsNeedle)
        }
    }
}

extension VerbatimBodyScannerTests {
    /// The same promise over real mail: every corpus message (its signed entities included, as
    /// whole messages) the scanner calls verbatim converts to exactly header plus body.
    @Test func corpusMessagesCalledVerbatimConvertToHeaderPlusBody() throws {
        var verbatimCount = 0
        for row in CorpusTests.rows {
            guard let message = try? CorpusTests.load(row),
                  let (fields, body) = try? MessageParser.split(message),
                  let whole = try? SignableEntity.make(fields: fields, body: body) else { continue }
            guard scan(fields, body, piece: 4096).verbatim else { continue }
            verbatimCount += 1
            let header = try SignableEntity.make(fields: fields, body: [])
            #expect(whole.bytes == header.bytes + body, "\(row.file)")
        }
        if !CorpusTests.rows.isEmpty { #expect(verbatimCount > 0) }
    }
}
