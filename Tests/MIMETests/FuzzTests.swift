// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import MIME

/// Deterministic mutation fuzzing: hostile input must give a result or a `MIMEError`, never a crash.
@Suite struct FuzzTests {
    static let seed = crlf("""
    From: "A, B" <a@b.example>
    Subject: =?utf-8?q?x?=
    Content-Type: multipart/mixed; boundary="b"
    Content-Transfer-Encoding: 8bit

    pre
    --b
    Content-Type: text/plain; charset*0*=utf-8''a%; charset*1=b

    Grüße
    From x\u{20}
    --b
    Content-Type: message/rfc822

    Subject: inner
    Content-Type: multipart/alternative; boundary=c

    --c
    Content-Transfer-Encoding: quoted-printable

    a=C3=A9=
    --c--
    --b--
    epi
    """)

    @Test func mutatedMessagesNeverCrash() {
        var rng = SplitMix(state: 42)
        let pieces: [[UInt8]] = [bytes("--b"), bytes("--c--"), [13], [10], [0xFF], [0], bytes("=\r\n"), bytes(":"),
                                 bytes("Content-Type: multipart/mixed; boundary=b\r\n"), bytes("\r\n\r\n"), bytes("=?"), bytes("\"")]
        var converted = 0
        for _ in 0..<300 {
            var m = Self.seed
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let at = Int.random(in: 0...m.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: m.insert(contentsOf: pieces.randomElement(using: &rng) ?? [], at: at)
                case 1: if at < m.count { m.removeSubrange(at..<min(m.count, at + Int.random(in: 1...20, using: &rng))) }
                default: if at < m.count { m[at] = UInt8.random(in: 0...255, using: &rng) }
                }
            }
            do {
                let (fields, body) = try MessageParser.split(m)
                _ = try MIMEParser.parse(fields: fields, body: body)
                let e = try SignableEntity.make(fields: fields, body: body)
                #expect(LineEnds.isCRLF(e.bytes))
                converted += 1
                for f in fields where f.hasName("From") || f.hasName("To") { _ = try? AddressList.mailboxes(in: f.value) }
                _ = EncodedWord.decode(fields.first(named: "Subject")?.value ?? "")
            } catch is MIMEError {
                continue
            } catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
        #expect(converted > 100)
    }

    @Test func randomStructuredValuesNeverCrash() {
        var rng = SplitMix(state: 7)
        let alphabet = Array("ab@<>()\\\",;:.=?* '%[]\t\r\n/é".unicodeScalars)
        for _ in 0..<2_000 {
            var s = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...40, using: &rng) { s.append(alphabet.randomElement(using: &rng) ?? "a") }
            let v = String(s)
            _ = ContentType(parsing: v)
            _ = ContentDisposition(parsing: v)
            _ = TransferEncoding(parsing: v)
            _ = try? AddressList.mailboxes(in: v)
            _ = EnvelopeAddress.normalise(v)
            _ = EncodedWord.decode(v)
            _ = EncodedWord.prefix("[x]", to: v)
        }
        #expect(Bool(true), "reaching here means no crash")
    }
}
