// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import Policy

@Suite("SigningTable")
struct SigningTableTests {
    private func table(_ text: String) throws -> SigningTable {
        try SigningTable.parse(contents: text, file: "signing.table")
    }

    @Test func firstMatchingLineWins() throws {
        let rules = try table("""
            alice@example.com   alice   opaque
            *@example.com       org
            """)
        #expect(rules.lookup("alice@example.com") == .sign(identity: "alice", form: .opaque))
        #expect(rules.lookup("bob@example.com") == .sign(identity: "org", form: .detached))
        #expect(rules.match("alice@example.com")?.line == 1)
        #expect(rules.match("bob@example.com")?.line == 2)
    }

    @Test func generalRuleFirstShadowsLaterSpecificOnes() throws {
        let rules = try table("*@example.com org\nalice@example.com alice opaque\n")
        #expect(rules.lookup("alice@example.com") == .sign(identity: "org", form: .detached))
    }

    @Test func subdomainPatternDoesNotMatchTheDomainItself() throws {
        let rules = try table("*@*.example.com sub\n")
        #expect(rules.lookup("a@mail.example.com") == .sign(identity: "sub", form: .detached))
        #expect(rules.lookup("a@x.y.example.com") == .sign(identity: "sub", form: .detached))
        #expect(rules.lookup("a@example.com") == nil)
        #expect(rules.lookup("a@badexample.com") == nil)
        #expect(rules.lookup("a@.example.com") == nil)
        #expect(rules.lookup("a@example.com.evil") == nil)
    }

    @Test func domainPatternDoesNotMatchSubdomains() throws {
        let rules = try table("*@example.com org\n")
        #expect(rules.lookup("a@example.com") != nil)
        #expect(rules.lookup("a@mail.example.com") == nil)
        #expect(rules.lookup("a@notexample.com") == nil)
    }

    @Test func catchAllMatchesEverything() throws {
        let rules = try table("news@example.com skip\n* fallback\n")
        #expect(rules.lookup("news@example.com") == .skip)
        #expect(rules.lookup("anyone@anywhere.test") == .sign(identity: "fallback", form: .detached))
        #expect(rules.lookup("no-at-sign") == .sign(identity: "fallback", form: .detached))
        #expect(rules.lookup("") == .sign(identity: "fallback", form: .detached))
        #expect(rules.match("x@y")?.line == 2)
    }

    @Test func userAtAnyDomainAndUserAtSubdomains() throws {
        let rules = try table("postmaster@* skip\nalerts@*.example.com monitor\n")
        #expect(rules.lookup("postmaster@example.org") == .skip)
        #expect(rules.lookup("alerts@db.example.com") == .sign(identity: "monitor", form: .detached))
        #expect(rules.lookup("alerts@example.com") == nil)
        #expect(rules.lookup("other@db.example.com") == nil)
    }

    @Test func matchingIsCaseInsensitiveAndIgnoresAngleBrackets() throws {
        let rules = try table("Alice@Example.COM alice DETACHED\n")
        #expect(rules.lookup("alice@example.com") == .sign(identity: "alice", form: .detached))
        #expect(rules.lookup("ALICE@EXAMPLE.com") != nil)
        #expect(rules.lookup("<alice@example.com>") != nil)
        #expect(rules.lookup("alice@example.org") == nil)
        #expect(rules.lookup("bob@example.com") == nil)
    }

    @Test func identityNameKeepsItsCase() throws {
        let rules = try table("*@example.com Example-Org\n")
        #expect(rules.lookup("a@example.com") == .sign(identity: "Example-Org", form: .detached))
    }

    @Test func commentsBlankLinesAndCRLF() throws {
        let rules = try table("# header\r\n\r\n  a@example.com  a  # who\r\n\tb@example.com\tb\topaque\r\n")
        #expect(rules.rules.count == 2)
        #expect(rules.match("a@example.com")?.line == 3)
        #expect(rules.lookup("b@example.com") == .sign(identity: "b", form: .opaque))
    }

    @Test func ruleDetailsAreExposed() throws {
        let rules = try table("*@*.example.com org opaque\n")
        let rule = try #require(rules.rules.first)
        #expect(rule.pattern.description == "*@*.example.com")
        #expect(rule.options == SigningOptions())
        #expect(rules.file == "signing.table")
    }

    @Test(arguments: [
        ("alice@example.com", "expected PATTERN IDENTITY"),
        ("example.com org", "bad pattern"),
        ("@example.com org", "bad pattern"),
        ("alice@ org", "bad pattern"),
        ("a*b@example.com org", "* may only stand for the whole user part"),
        ("*@ex*ample.com org", "* may only stand"),
        ("*@.example.com org", "write *@*.example.com"),
        ("*@example.com. org", "bad domain"),
        ("** org", "bad pattern"),
        ("alice@example.com opaque", "missing identity before \"opaque\""),
        ("alice@example.com color=blue", "missing identity before option"),
        ("alice@example.com alice sideways", "unexpected \"sideways\""),
        ("alice@example.com alice opaque detached", "form is given twice"),
        ("alice@example.com skip opaque", "nothing may follow skip"),
        ("alice@example.com alice color=blue", "unknown option \"color\" (known options: OnBrokenSignature)"),
        ("alice@example.com alice OnBrokenSignature=sometimes", "bad value for option OnBrokenSignature"),
        ("alice@example.com alice OnBrokenSignature=keep onbrokensignature=strip", "option OnBrokenSignature given twice"),
        ("alice@example.com skip OnBrokenSignature=resign", "resign needs an identity"),
        ("alice@example.com al\u{1}ice", "control characters"),
    ])
    func badLinesAreReportedWithFileAndLine(line: String, expected: String) {
        let error = configurationError { try table("# first\n*@other.test org\n\(line)\n") }
        #expect(error?.file == "signing.table")
        #expect(error?.line == 3)
        #expect(error?.message.contains(expected) == true, "got \(error?.description ?? "no error")")
        #expect(error?.description.hasPrefix("signing.table:3: ") == true)
    }

    @Test func repeatedPatternsAndRulesAfterTheCatchAllAreErrors() {
        let repeated = configurationError { try table("*@example.com a\nx@y.test b\n*@EXAMPLE.com c\n") }
        #expect(repeated?.line == 3)
        #expect(repeated?.message.contains("already appears on line 1") == true)

        let afterCatchAll = configurationError { try table("* a\nx@y.test b\n") }
        #expect(afterCatchAll?.line == 2)
        #expect(afterCatchAll?.message.contains("catch-all * on line 1") == true)
    }

    @Test func unknownOptionNamesTheKnownOnes() {
        let error = configurationError { try table("a@b.test id foo=bar\n") }
        #expect(error?.message == "unknown option \"foo\" (known options: OnBrokenSignature)")
    }

    @Test func onBrokenSignatureOptionAfterIdentityOrSkip() throws {
        let rules = try table("a@b.test id opaque OnBrokenSignature=KEEP\n"
            + "c@b.test id onbrokensignature=strip detached\n"
            + "n@b.test skip OnBrokenSignature=strip\n"
            + "d@b.test id\n")
        #expect(rules.match("a@b.test")?.options.onBrokenSignature == .keep)
        #expect(rules.match("a@b.test")?.entry == .sign(identity: "id", form: .opaque))
        #expect(rules.match("c@b.test")?.options.onBrokenSignature == .strip)
        #expect(rules.match("n@b.test")?.entry == .skip)
        #expect(rules.match("n@b.test")?.options.onBrokenSignature == .strip)
        #expect(rules.match("d@b.test")?.options.onBrokenSignature == nil)
    }

    @Test func emptyTableMatchesNothing() throws {
        let rules = try table("# nothing yet\n")
        #expect(rules.rules.isEmpty)
        #expect(rules.lookup("a@example.com") == nil)
    }

    @Test func loadReadsAFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = try dir.write("t", "*@example.com org opaque\n")
        #expect(try SigningTable.load(path: path).lookup("x@example.com") == .sign(identity: "org", form: .opaque))
        let missing = configurationError { try SigningTable.load(path: dir.path + "/none") }
        #expect(missing?.file == dir.path + "/none")
        #expect(missing?.line == nil)
    }
}
