// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import Policy

@Suite("SenderMap")
struct SenderMapTests {
    private func map(_ text: String) throws -> SenderMap {
        try SenderMap.parse(contents: text, file: "sender.map")
    }

    @Test func exactAddressEntryComesBeforeTheDomainEntry() throws {
        let senders = try map("""
            ceo@example.com     ceo, assistant
            @example.com        staff,admin
            """)
        #expect(senders.allowedLogins(for: "ceo@example.com") == ["ceo", "assistant"])
        #expect(senders.allows(login: "assistant", address: "ceo@example.com"))
        // The exact entry replaces the domain entry rather than adding to it.
        #expect(!senders.allows(login: "staff", address: "ceo@example.com"))
        #expect(senders.allowedLogins(for: "bob@example.com") == ["staff", "admin"])
        #expect(senders.allows(login: "admin", address: "bob@example.com"))
        #expect(!senders.allows(login: "ceo", address: "bob@example.com"))
        #expect(senders.entry(for: "ceo@example.com")?.line == 1)
        #expect(senders.entry(for: "bob@example.com")?.line == 2)
    }

    @Test func noEntryMeansNobody() throws {
        let senders = try map("@example.com staff\n")
        #expect(senders.allowedLogins(for: "a@example.org") == [])
        #expect(!senders.allows(login: "staff", address: "a@example.org"))
        #expect(!senders.allows(login: "staff", address: "a@sub.example.com"), "no parent-domain matching")
        #expect(!senders.allows(login: "staff", address: "not-an-address"))
        #expect(!senders.allows(login: "staff", address: "@example.com"))
    }

    @Test func everythingIsCaseInsensitive() throws {
        let senders = try map("Alice@Example.COM  Alice\n")
        #expect(senders.allows(login: "alice", address: "alice@example.com"))
        #expect(senders.allows(login: "ALICE", address: "<ALICE@example.com>"))
        #expect(!senders.allows(login: "alice2", address: "alice@example.com"))
        #expect(!senders.allows(login: "", address: "alice@example.com"))
    }

    @Test func namesMaySeparatedByCommasAndBlanks() throws {
        let senders = try map("support@example.com anna,bob  carl ,\tdora\n")
        #expect(senders.allowedLogins(for: "support@example.com") == ["anna", "bob", "carl", "dora"])
    }

    @Test func envelopeSenderSemantics() throws {
        let senders = try map("""
            ceo@example.com   ceo, bounces@example.com
            @example.com      www-data@example.com
            """)
        // The same address is always allowed, with or without a map entry.
        #expect(senders.allows(envelopeSender: "alice@example.org", address: "alice@example.org"))
        #expect(senders.allows(envelopeSender: "<Bob@Example.com>", address: "bob@example.com"))
        // Listed envelope senders may use the address.
        #expect(senders.allows(envelopeSender: "bounces@example.com", address: "ceo@example.com"))
        #expect(senders.allows(envelopeSender: "www-data@example.com", address: "anyone@example.com"))
        // Others may not; a login name listed for the address is not an envelope sender.
        #expect(!senders.allows(envelopeSender: "www-data@example.com", address: "ceo@example.com"))
        #expect(!senders.allows(envelopeSender: "mallory@example.net", address: "anyone@example.com"))
        #expect(!senders.allows(envelopeSender: "ceo", address: "ceo@example.com"))
        // A null sender is never allowed.
        #expect(!senders.allows(envelopeSender: "<>", address: "ceo@example.com"))
        #expect(!senders.allows(envelopeSender: "", address: ""))
    }

    @Test(arguments: [
        ("alice@example.com", "expected ADDRESS-or-@DOMAIN"),
        ("alice@example.com   ,", "expected ADDRESS-or-@DOMAIN"),
        ("example.com alice", "bad key"),
        ("*@example.com alice", "wildcards are not supported"),
        ("@*.example.com alice", "wildcards are not supported"),
        ("alice@ alice", "bad key"),
        ("@.example.com alice", "bad key"),
        ("Ceo@Example.com again", "duplicate entry for ceo@example.com (first on line 2)"),
    ])
    func badLinesAreReportedWithFileAndLine(line: String, expected: String) {
        let error = configurationError { try map("# map\nceo@example.com ceo\n\(line)\n") }
        #expect(error?.description.hasPrefix("sender.map:3: ") == true, "got \(error?.description ?? "no error")")
        #expect(error?.message.contains(expected) == true, "got \(error?.description ?? "no error")")
    }

    @Test func crlfAndComments() throws {
        let senders = try map("# m\r\n\r\na@example.com a # the user\r\n")
        #expect(senders.entries.count == 1)
        #expect(senders.allowedLogins(for: "a@example.com") == ["a"])
        #expect(senders.entry(for: "a@example.com")?.line == 3)
    }
}
