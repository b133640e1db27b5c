// SPDX-License-Identifier: Apache-2.0
import MIME
import Policy
import Testing

/// Subject tags: plain text before the first word, never twice, encoded-words kept valid.
@Suite struct SubjectTagTests {
    /// 会議の資料 ("meeting material") in ISO-2022-JP, as Japanese mailers send it.
    let japanese = " =?ISO-2022-JP?B?GyRCMnE1RCROO3FOQRsoQg==?="

    @Test func plainSubjectGetsTagAndSpace() {
        #expect(SubjectTag.tagged(" Quarterly report", with: "[signed]") == " [signed] Quarterly report")
        // Blanks around the configured tag do not matter.
        #expect(SubjectTag.tagged(" Quarterly report", with: " [signed] ") == " [signed] Quarterly report")
    }

    @Test func japaneseEncodedWordStaysValidAndUntouched() throws {
        let tagged = try #require(SubjectTag.tagged(japanese, with: "[signed]"))
        #expect(tagged == " [signed] =?ISO-2022-JP?B?GyRCMnE1RCROO3FOQRsoQg==?=")
        // The word is byte for byte what it was, and a reader sees tag, space, subject.
        #expect(tagged.hasSuffix(japanese))
        #expect(EncodedWord.decode(tagged) == " [signed] 会議の資料")
    }

    @Test func nonASCIITagIsEncodedAndKeepsItsSpace() throws {
        let tagged = try #require(SubjectTag.tagged(japanese, with: "[署名済]"))
        #expect(!tagged.unicodeScalars.contains { !$0.isASCII })
        #expect(EncodedWord.decode(tagged) == " [署名済] 会議の資料")
    }

    @Test func neverTagsTwice() {
        #expect(SubjectTag.tagged(" [signed] Quarterly report", with: "[signed]") == nil)
        #expect(SubjectTag.tagged("   [SIGNED] Quarterly report", with: "[signed]") == nil)
        #expect(SubjectTag.tagged("\n\t[signed] folded", with: "[signed]") == nil)
        // The tag inside an encoded word counts too.
        #expect(SubjectTag.tagged(" =?utf-8?B?W3NpZ25lZF0g5Lya6K2w?=", with: "[signed]") == nil)
        // Tagging the result again changes nothing.
        let once = SubjectTag.tagged(japanese, with: "[signed]") ?? ""
        #expect(SubjectTag.tagged(once, with: "[signed]") == nil)
        // Elsewhere in the subject it is not a tag.
        #expect(SubjectTag.tagged(" Re: [signed] Quarterly report", with: "[signed]") == " [signed] Re: [signed] Quarterly report")
    }

    @Test func foldedSubjectKeepsItsFolds() {
        let value = " A long subject\n\tcontinued here"
        #expect(SubjectTag.tagged(value, with: "[signed]") == " [signed] A long subject\n\tcontinued here")
    }

    @Test func emptyTagDoesNothing() {
        #expect(SubjectTag.tagged(" x", with: "") == nil)
        #expect(SubjectTag.tagged(" x", with: "   ") == nil)
        #expect(SubjectTag.untagged(" x", tag: "") == nil)
    }

    @Test func emptySubjectAndNewSubject() {
        #expect(SubjectTag.tagged("", with: "[signed]") == " [signed]")
        #expect(SubjectTag.newValue(tag: "[unsigned]") == " [unsigned]")
        #expect(EncodedWord.decode(SubjectTag.newValue(tag: "[ungeprüft]")) == " [ungeprüft]")
    }

    @Test func forgedTagIsRemoved() {
        #expect(SubjectTag.untagged(" [signed] Pay this invoice", tag: "[signed]") == " Pay this invoice")
        #expect(SubjectTag.untagged(" [SIGNED]Pay", tag: "[signed]") == " Pay")
        #expect(SubjectTag.untagged(" Pay this invoice", tag: "[signed]") == nil)
        // Hidden in an encoded word: removed, the rest re-encoded.
        let hidden = SubjectTag.untagged(" =?utf-8?B?W3NpZ25lZF0g5Lya6K2w?=", tag: "[signed]")
        #expect(hidden.map { EncodedWord.decode($0) } == " 会議")
    }
}
