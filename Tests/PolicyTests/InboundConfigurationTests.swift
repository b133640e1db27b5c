// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import Policy

/// The configuration keys of the inbound policy.
@Suite struct InboundConfigurationTests {
    @Test func defaults() throws {
        let config = try parseConfig("")
        #expect(config.subjectTagPass.isEmpty && config.subjectTagFail.isEmpty && config.subjectTagNone.isEmpty)
        #expect(config.requireSignature == nil)
        #expect(config.onMissingSignature == .tag)
    }

    @Test func subjectTagsKeepInnerBlanks() throws {
        let config = try parseConfig("SubjectTagPass [signed]\nSubjectTagFail   [SIGNATURE BROKEN]  \nSubjectTagNone [ungeprüft]")
        #expect(config.subjectTagPass == "[signed]")
        #expect(config.subjectTagFail == "[SIGNATURE BROKEN]")
        #expect(config.subjectTagNone == "[ungeprüft]")
    }

    @Test func badSubjectTags() {
        let long = configurationError { try parseConfig("SubjectTagPass " + String(repeating: "x", count: 101)) }
        #expect(long?.line == 1)
        #expect(long?.message.contains("at most 100") == true)
        let control = configurationError { try parseConfig("\nSubjectTagFail a\u{7}b") }
        #expect(control?.line == 2)
        #expect(control?.message.contains("control characters") == true)
    }

    @Test func onMissingSignatureValues() throws {
        for action in MissingSignatureAction.allCases {
            #expect(try parseConfig("OnMissingSignature \(action.rawValue.uppercased())").onMissingSignature == action)
        }
        let error = configurationError { try parseConfig("OnMissingSignature bounce") }
        #expect(error?.message.contains("expected tag, quarantine, reject or accept") == true)
    }

    @Test func requireSignatureFileIsParsed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("required", """
            # senders that sign everything
            alerts@Bank.Example   # exact address
            @ministry.example

            @ministry.example     # twice is harmless
            """)
        let path = try dir.write("c.conf", "RequireSignature required\nCertificateDir certs\n")
        let config = try ConfigurationParser.load(path: path)
        let list = try #require(config.requireSignature)
        #expect(list.addresses == ["alerts@bank.example"])
        #expect(list.domains == ["ministry.example"])
        #expect(list.file == dir.path + "/required")
        #expect(config.describe().contains("RequireSignature"))
        #expect(config.describe().contains("# 2 entries"))
        #expect(try ConfigurationParser.parse(contents: config.describe(), file: path) == config)
    }

    @Test func requireSignatureErrorsNameFileAndLine() throws {
        let bad: [(String, String)] = [
            ("ok@example.com\nno-at-sign\n", "expected user@domain or @domain"),
            ("ok@example.com\n\n*@example.com\n", "no wildcards"),
            ("ok@example.com\n@*.example.com\n", "bad domain"),
            ("ok@example.com\na@b.example c@d.example\n", "one address or @domain per line"),
            ("ok@example.com\n@example..com\n", "bad domain"),
            ("ok@example.com\nuser@\n", "bad domain"),
        ]
        for (text, message) in bad {
            let error = configurationError { try RequiredSigners.parse(contents: text, file: "/etc/required") }
            #expect(error?.file == "/etc/required")
            #expect(error?.line == text.split(separator: "\n", omittingEmptySubsequences: false).count - 1, "\(text)")
            #expect(error?.message.contains(message) == true, "\(String(describing: error)) for \(text)")
        }
        let missing = configurationError { try parseConfig("RequireSignature /nonexistent/required") }
        #expect(missing?.line == 1)
        #expect(missing?.message.contains("RequireSignature") == true)
    }
}
