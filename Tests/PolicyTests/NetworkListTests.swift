// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import Policy

@Suite("NetworkList")
struct NetworkListTests {
    private func list(_ text: String) throws -> NetworkList {
        try NetworkList.parse(list: text)
    }

    @Test func singleAddressesAreExactMatches() throws {
        let hosts = try list("192.0.2.1, 2001:db8::1")
        #expect(hosts.contains("192.0.2.1"))
        #expect(!hosts.contains("192.0.2.2"))
        #expect(!hosts.contains("192.0.2.0"))
        #expect(hosts.contains("2001:db8::1"))
        #expect(hosts.contains("2001:DB8:0:0:0:0:0:1"))
        #expect(!hosts.contains("2001:db8::2"))
    }

    @Test func slash32AndSlash128AreSingleHosts() throws {
        let hosts = try list("198.51.100.7/32 2001:db8::7/128")
        #expect(hosts.contains("198.51.100.7"))
        #expect(!hosts.contains("198.51.100.6"))
        #expect(hosts.contains("2001:db8::7"))
        #expect(!hosts.contains("2001:db8::6"))
    }

    @Test func slash0CoversItsWholeFamilyOnly() throws {
        let v4 = try list("0.0.0.0/0")
        #expect(v4.contains("0.0.0.0"))
        #expect(v4.contains("255.255.255.255"))
        #expect(v4.contains("::ffff:10.0.0.1"))
        #expect(!v4.contains("2001:db8::1"))
        let v6 = try list("::/0")
        #expect(v6.contains("2001:db8::1"))
        #expect(v6.contains("::"))
        #expect(!v6.contains("10.0.0.1"), "IPv6 networks do not cover IPv4 clients")
        #expect(!v6.contains("::ffff:10.0.0.1"))
    }

    @Test func cidrBoundaries() throws {
        let hosts = try list("10.0.0.0/8, 192.168.4.0/22, 2001:db8::/33")
        #expect(hosts.contains("10.0.0.0"))
        #expect(hosts.contains("10.255.255.255"))
        #expect(!hosts.contains("11.0.0.0"))
        #expect(!hosts.contains("9.255.255.255"))
        #expect(hosts.contains("192.168.4.0"))
        #expect(hosts.contains("192.168.7.255"))
        #expect(!hosts.contains("192.168.8.0"))
        #expect(!hosts.contains("192.168.3.255"))
        #expect(hosts.contains("2001:db8:7fff:ffff::1"))
        #expect(!hosts.contains("2001:db8:8000::1"))
        #expect(!hosts.contains("2001:db9::1"))
    }

    @Test func ipv4MappedAddressesMatchIPv4Entries() throws {
        let hosts = try list("127.0.0.1, 10.0.0.0/8")
        #expect(hosts.contains("::ffff:127.0.0.1"))
        #expect(hosts.contains("::FFFF:10.20.30.40"))
        #expect(hosts.contains("::ffff:a00:1"))
        #expect(!hosts.contains("::ffff:127.0.0.2"))
        #expect(!hosts.contains("::127.0.0.1"), "IPv4-compatible (not mapped) is a different address")
    }

    @Test func ipv4MappedEntriesMatchIPv4Clients() throws {
        let hosts = try list("::ffff:192.0.2.1, ::ffff:10.0.0.0/104")
        #expect(hosts.contains("192.0.2.1"))
        #expect(hosts.contains("10.1.2.3"))
        #expect(hosts.contains("::ffff:10.1.2.3"))
        #expect(!hosts.contains("11.1.2.3"))
        #expect(hosts.entries.map(\.description) == ["192.0.2.1", "10.0.0.0/8"])
    }

    @Test func negatedEntriesAndTheMostSpecificEntryWins() throws {
        let hosts = try list("10.0.0.0/8, !10.9.0.0/16, 10.9.8.7")
        #expect(hosts.contains("10.1.1.1"))
        #expect(!hosts.contains("10.9.1.1"))
        #expect(hosts.contains("10.9.8.7"))
        // Order does not matter: the more specific exclusion still wins.
        let reversed = try list("!10.9.0.0/16 10.0.0.0/8")
        #expect(!reversed.contains("10.9.1.1"))
        #expect(reversed.contains("10.8.1.1"))
        // At equal length the exclusion wins.
        let tie = try list("192.0.2.1, !192.0.2.1")
        #expect(!tie.contains("192.0.2.1"))
        // An exclusion alone contains nothing.
        #expect(!(try list("!192.0.2.1")).contains("192.0.2.1"))
        #expect(!(try list("!2001:db8::/32")).contains("2001:db8::1"))
    }

    @Test func clientAddressFormsFromMTAs() throws {
        let hosts = try list("::1, 127.0.0.1, fe80::/10")
        #expect(hosts.contains("[::1]"))
        #expect(hosts.contains("IPv6:::1"))
        #expect(hosts.contains("[IPv6:::1]"))
        #expect(hosts.contains(" 127.0.0.1 "))
        #expect(hosts.contains("[127.0.0.1]"))
        #expect(hosts.contains("fe80::1%eth0"))
    }

    @Test(arguments: ["", " ", "localhost", "1.2.3", "1.2.3.4.5", "256.0.0.1", "::g", "1:2:3:4:5:6:7:8:9",
                      "127.0.0.1\u{0}junk", "127.0.0.1/8", "[::1", "%eth0", "0x7f.0.0.1", String(repeating: "1", count: 5000)])
    func garbageIsNeverContained(_ address: String) throws {
        let everything = try list("0.0.0.0/0, ::/0")
        #expect(!everything.contains(address))
    }

    @Test(arguments: ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0.0/08x",
                      "localhost", "1.2.3", "!", "!!10.0.0.1", "::1/+5", "2001:db8::g", "10.0.0.0/1000",
                      "127.0.0.1\u{0}", "[10.0.0.1]x"])
    func badEntriesAreRejected(_ entry: String) {
        #expect(throws: ValueProblem.self) { try NetworkList.parse(list: entry) }
    }

    @Test func hostBitsBeyondThePrefixAreRejectedWithASuggestion() {
        do {
            _ = try NetworkList.parse(list: "10.1.2.3/8")
            Issue.record("accepted 10.1.2.3/8")
        } catch let problem as ValueProblem {
            #expect(problem.reason.contains("did you mean 10.0.0.0/8?"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(throws: ValueProblem.self) { try NetworkList.parse(list: "2001:db8::1/32") }
    }

    @Test func fileFormWithCommentsAndLineNumbers() throws {
        let hosts = try NetworkList.parse(contents: "# office\r\n192.0.2.0/24 # lan\r\n\r\n2001:db8::/32, ::1\r\n", file: "hosts")
        #expect(hosts.entries.count == 3)
        #expect(hosts.sourceFile == "hosts")
        #expect(hosts.contains("192.0.2.77"))
        #expect(hosts.contains("::1"))

        let error = configurationError {
            try NetworkList.parse(contents: "10.0.0.0/8\n\n# x\n10.0.0.0/40\n", file: "hosts")
        }
        #expect(error?.description.hasPrefix("hosts:4: bad prefix length in \"10.0.0.0/40\"") == true)
    }

    @Test func descriptionParsesBackToTheSameEntries() throws {
        let hosts = try list("10.0.0.0/8, !10.9.0.0/16, 127.0.0.1, ::1, 2001:db8::/32, !2001:db8::1")
        #expect(hosts.description == "10.0.0.0/8, !10.9.0.0/16, 127.0.0.1, ::1, 2001:db8::/32, !2001:db8::1")
        #expect(try list(hosts.description) == hosts)
    }

    @Test func loopbackDefault() {
        #expect(NetworkList.loopback.contains("127.0.0.1"))
        #expect(NetworkList.loopback.contains("::1"))
        #expect(NetworkList.loopback.contains("::ffff:127.0.0.1"))
        #expect(!NetworkList.loopback.contains("127.0.0.2"))
    }
}
