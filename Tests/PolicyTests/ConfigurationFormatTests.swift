// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
import SMIME
@testable import Policy

@Suite("Configuration file format")
struct ConfigurationFormatTests {
    @Test func defaultsWhenNothingIsSet() throws {
        let config = try parseConfig("")
        #expect(config.process.socket == .inet(host: "127.0.0.1", port: 8891))
        #expect(config.process.socketMode == 0o660)
        #expect(config.process.userID == nil)
        #expect(config.process.pidFile == nil)
        #expect(config.mode == [.sign, .verify])
        #expect(config.authservID == Configuration.systemHostName())
        #expect(!config.authservID.isEmpty)
        #expect(config.internalHosts.contains("127.0.0.1"))
        #expect(config.internalHosts.contains("::1"))
        #expect(!config.internalHosts.contains("192.0.2.1"))
        #expect(config.signingTable == nil)
        #expect(config.senderMap == nil)
        #expect(config.trustAnchors == nil)
        #expect(config.digest == .sha256)
        #expect(config.onError == .tempfail)
        #expect(config.process.logLevel == .info)
    }

    @Test func commentsAndBlankLinesAreIgnored() throws {
        let config = try parseConfig("""
            # a comment line
               # an indented comment

            \t
            Digest sha512   # a trailing comment
            LogLevel debug#no space before the comment
            """)
        #expect(config.digest == .sha512)
        #expect(config.process.logLevel == .debug)
    }

    @Test func keysAreCaseInsensitiveAndBlanksMayBeTabs() throws {
        let config = try parseConfig("digest\tSHA384\nONERROR   accept\n  loglevel  Warning  ")
        #expect(config.digest == .sha384)
        #expect(config.onError == .accept)
        #expect(config.process.logLevel == .warning)
    }

    @Test func crlfLineEndsWork() throws {
        let config = try parseConfig("# Windows\r\nDigest sha512\r\n\r\nOnError accept\r\n")
        #expect(config.digest == .sha512)
        #expect(config.onError == .accept)
    }

    @Test func crlfLineNumbersMatchAnEditor() {
        let error = configurationError { try parseConfig("# one\r\n\r\nDigest sha256\r\nDigest md5\r\n") }
        #expect(error?.line == 4)
        #expect(error?.description.hasPrefix("t.conf:4: ") == true)
    }

    @Test func loneCarriageReturnsAndByteOrderMarkWork() throws {
        let config = try parseConfig("\u{FEFF}Digest sha384\rLogLevel error\r")
        #expect(config.digest == .sha384)
        #expect(config.process.logLevel == .error)
    }

    @Test func unknownKeyIsReportedWithFileAndLine() {
        let error = configurationError {
            try parseConfig("# comment\n\nSokcet inet:8891@127.0.0.1\n", file: "smime-milter.conf")
        }
        #expect(error?.file == "smime-milter.conf")
        #expect(error?.line == 3)
        #expect(error?.description.hasPrefix("smime-milter.conf:3: unknown key \"Sokcet\"") == true)
        #expect(error?.message.contains("did you mean Socket?") == true)
    }

    @Test func unknownKeyFarFromAnyKnownKeyHasNoSuggestion() {
        let error = configurationError { try parseConfig("Canonicalization relaxed") }
        #expect(error?.message == "unknown key \"Canonicalization\"")
    }

    @Test func keyWithEqualsSignGetsAHint() {
        let error = configurationError { try parseConfig("Digest=sha256") }
        #expect(error?.line == 1)
        #expect(error?.message.contains("write Key value") == true)
    }

    @Test func duplicateKeysAreErrorsWhateverTheirCase() {
        let error = configurationError { try parseConfig("Digest sha256\nLogLevel info\ndigest sha512") }
        #expect(error?.description == "t.conf:3: duplicate key Digest (already set on line 1)")
    }

    @Test func keyWithoutValueIsAnError() {
        let error = configurationError { try parseConfig("LogLevel debug\nDigest   # nothing") }
        #expect(error?.description == "t.conf:2: missing value for Digest")
    }

    @Test func badValueMessageNamesKeyValueAndExpectation() {
        let error = configurationError { try parseConfig("\n\n\n\n\n\n\n\n\n\n\nDigest md5", file: "smime-milter.conf") }
        #expect(error?.description
            == "smime-milter.conf:12: bad value for Digest: \"md5\" (expected sha256, sha384 or sha512)")
    }

    @Test func controlCharactersInValuesAreEscapedInMessages() {
        let error = configurationError { try parseConfig("LogLevel de\u{1}bug\"") }
        #expect(error?.message.contains("\"de\\u{1}bug\\\"\"") == true)
    }

    @Test func certificateDirIsRequiredWhenSigning() {
        let byDefault = configurationError { try ConfigurationParser.parse(contents: "Digest sha256\n", file: "a.conf") }
        #expect(byDefault?.line == nil)
        #expect(byDefault?.description.hasPrefix("a.conf: CertificateDir is required") == true)

        let explicit = configurationError { try ConfigurationParser.parse(contents: "\nMode s\n", file: "a.conf") }
        #expect(explicit?.line == 2)
        #expect(explicit?.message.contains("Mode includes s") == true)
    }

    @Test func certificateDirIsNotRequiredForVerifyOnly() throws {
        let config = try ConfigurationParser.parse(contents: "Mode v\n", file: "a.conf")
        #expect(config.mode == [.verify])
        #expect(config.certificateDir == nil)
    }

    @Test func certificateDirNeedNotExistYet() throws {
        let config = try ConfigurationParser.parse(contents: "CertificateDir /no/such/dir", file: "/etc/x/a.conf")
        #expect(config.certificateDir == "/no/such/dir")
    }

    @Test func loadReadsTheFileAndResolvesRelativePathsAgainstItsDirectory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("etc/signing.table", "*@example.com org\n")
        try dir.write("etc/sender.map", "@example.com alice\n")
        let path = try dir.write("etc/smime-milter.conf", """
            CertificateDir certs
            SigningTable signing.table
            SenderMap ./sender.map
            PidFile ../run/x.pid
            TrustAnchors /abs/anchors.pem
            """)
        let config = try ConfigurationParser.load(path: path)
        #expect(config.sourceFile == path)
        #expect(config.certificateDir == dir.path + "/etc/certs")
        #expect(config.process.pidFile == dir.path + "/run/x.pid")
        #expect(config.trustAnchors == "/abs/anchors.pem")
        #expect(config.signingTable?.file == dir.path + "/etc/signing.table")
        #expect(config.signingTable?.lookup("bob@example.com") == .sign(identity: "org", form: .detached))
        #expect(config.senderMap?.file == dir.path + "/etc/sender.map")
        #expect(config.senderMap?.allows(login: "alice", address: "bob@example.com") == true)
    }

    @Test func loadReportsUnreadableFiles() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let missing = configurationError { try ConfigurationParser.load(path: dir.path + "/nope.conf") }
        #expect(missing?.file == dir.path + "/nope.conf")
        #expect(missing?.line == nil)
        #expect(missing?.message.contains("No such file or directory") == true)

        let directory = configurationError { try ConfigurationParser.load(path: dir.path) }
        #expect(directory?.message.contains("not a regular file") == true)

        let binary = dir.path + "/binary.conf"
        try Data([0x44, 0x69, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: binary))
        let notUTF8 = configurationError { try ConfigurationParser.load(path: binary) }
        #expect(notUTF8?.message.contains("not valid UTF-8") == true)
    }

    @Test func fifoIsRefusedWithoutBlocking() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let fifo = dir.path + "/fifo.conf"
        #expect(mkfifo(fifo, 0o600) == 0)
        let error = configurationError { try ConfigurationParser.load(path: fifo) }
        #expect(error?.message.contains("not a regular file") == true)
    }

    @Test func describeListsEveryKeyAndParsesBackToTheSameConfiguration() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("signing.table", "alice@example.com alice opaque\n*@example.com org\n")
        try dir.write("sender.map", "@example.com alice, bob\n")
        try dir.write("hosts", "10.0.0.0/8\n!10.9.0.0/16\n")
        let path = try dir.write("a.conf", """
            Socket unix:/run/smime.sock
            SocketMode 0600
            UserID smime:mail
            Mode s
            AuthservID mx.example.com
            InternalHosts ./hosts
            CertificateDir certs
            SigningTable signing.table
            SenderMap sender.map
            Digest sha512
            OnError accept
            LogLevel debug
            """)
        let config = try ConfigurationParser.load(path: path)
        let text = config.describe()
        for key in ConfigurationKey.all {
            #expect(text.contains("\n" + key.name + " ") || text.contains("\n#" + key.name + " "),
                    "describe() misses \(key.name)")
        }
        #expect(text.contains("#PidFile "))
        #expect(text.contains("#TrustAnchors "))
        #expect(text.contains("2 rules"))
        let reparsed = try ConfigurationParser.parse(contents: text, file: path)
        #expect(reparsed == config)
    }

    @Test func describeOfDefaultsParsesBack() throws {
        let config = try parseConfig("")
        let reparsed = try ConfigurationParser.parse(contents: config.describe(), file: "t.conf")
        #expect(reparsed == config)
    }
}
