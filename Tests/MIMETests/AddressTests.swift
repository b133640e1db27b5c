// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import MIME

@Suite struct AddressTests {
    @Test func simpleForms() throws {
        let list = try AddressList.mailboxes(in: " Alice <Alice.Smith@Example.COM>, bob@EXAMPLE.org")
        #expect(list.count == 2)
        #expect(list[0].displayName == "Alice")
        #expect(list[0].address == "Alice.Smith@example.com")
        #expect(list[0].normalisedAddress == "alice.smith@example.com")
        #expect(list[1].displayName == nil)
        #expect(list[1].address == "bob@example.org")
    }

    @Test func quotedNamesCommentsAndEncodedWords() throws {
        let list = try AddressList.mailboxes(in: "\"Smith, John\" <john@x.example>,\n =?UTF-8?Q?J=C3=B6rg?= =?utf-8?B?IE3DvGxsZXI=?= <j@x.example>, carol@x.example (Carol C.), (c) dave (x) @ (y) x.example")
        #expect(list.map(\.displayName) == ["Smith, John", "Jörg Müller", "Carol C.", nil])
        #expect(list.map(\.address) == ["john@x.example", "j@x.example", "carol@x.example", "dave@x.example"])
    }

    @Test func groups() throws {
        #expect(try AddressList.mailboxes(in: "undisclosed-recipients:;").isEmpty)
        let list = try AddressList.mailboxes(in: "Team: a@x.example, B <b@x.example>; c@y.example")
        #expect(list.map(\.address) == ["a@x.example", "b@x.example", "c@y.example"])
        #expect(list.map(\.group) == ["Team", "Team", nil])
    }

    @Test func obsoleteForms() throws {
        let list = try AddressList.mailboxes(in: ",, <@relay.example,@r2.example:user@Host.Example>, ,\"quoted\"@x.example, \"a b\"@x.example, John Q. Public <jqp@x.example")
        #expect(list.map(\.address) == ["user@host.example", "quoted@x.example", "\"a b\"@x.example", "jqp@x.example"])
        #expect(list[3].displayName == "John Q. Public")
    }

    @Test func internationalAddress() throws {
        let list = try AddressList.mailboxes(in: "Ünïcödé <JÖRG@Bücher.Example>")
        #expect(list[0].address == "JÖRG@bücher.example")
        #expect(list[0].normalisedAddress == "jörg@bücher.example")
    }

    @Test func invalid() throws {
        #expect(throws: MIMEError.self) { try AddressList.mailboxes(in: "just words") }
        #expect(throws: MIMEError.self) { try AddressList.mailboxes(in: "a@") }
        #expect(throws: MIMEError.self) { try AddressList.mailboxes(in: "<a@b> junk@") }
        #expect(try AddressList.mailboxes(in: "").isEmpty)
    }

    @Test func envelope() {
        #expect(EnvelopeAddress.normalise("<Alice@Example.COM>") == "alice@example.com")
        #expect(EnvelopeAddress.normalise(" bob@example.org ") == "bob@example.org")
        #expect(EnvelopeAddress.normalise("<>") == "")
        #expect(EnvelopeAddress.normalise("<@relay:Carol@Example.org>") == "carol@example.org")
        #expect(EnvelopeAddress.normalise("<\"dave\"@x.example>") == "dave@x.example")
        #expect(EnvelopeAddress.normalise("<not an address>") == "not an address")
    }
}

@Suite struct EncodedWordTests {
    @Test func detectAndDecode() {
        #expect(EncodedWord.containsEncodedWords(" =?iso-8859-1?q?caf=E9?= bar"))
        #expect(!EncodedWord.containsEncodedWords(" plain =? text ?="))
        #expect(EncodedWord.decode("=?iso-8859-1?q?caf=E9?= =?utf-8?b?IGF1?=  lait") == "café au  lait")
        #expect(EncodedWord.decode("=?UTF-8?Q?a_b?=") == "a b")
        #expect(EncodedWord.decode("=?bad") == "=?bad")
    }

    @Test func encodeAndPrefix() {
        #expect(EncodedWord.encode("plain") == "plain")
        let encoded = EncodedWord.encode("Grüße " + String(repeating: "ä", count: 40))
        #expect(encoded.split(separator: " ").allSatisfy { $0.count <= 75 && $0.hasPrefix("=?utf-8?B?") })
        #expect(EncodedWord.decode(encoded) == "Grüße " + String(repeating: "ä", count: 40))
        #expect(EncodedWord.prefix("[signed]", to: " Hello") == " [signed] Hello")
        #expect(EncodedWord.prefix("[signed]", to: "") == "[signed]")
        let tagged = EncodedWord.prefix("[sígned]", to: " =?utf-8?q?J=C3=B6rg?=")
        #expect(EncodedWord.decode(tagged) == " [sígned] Jörg")
        #expect(EncodedWord.decode(EncodedWord.prefix("[sígned]", to: " plain")) == " [sígned] plain")
    }
}
