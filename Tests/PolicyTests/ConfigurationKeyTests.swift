// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
import SMIME
@testable import Policy

@Suite("Configuration keys")
struct ConfigurationKeyTests {
    /// A bad value must be reported as `t.conf:1: bad value for KEY: "VALUE" (...)`.
    @Test(arguments: [
        ("Socket", "tcp:8891"), ("Socket", "inet:0@127.0.0.1"), ("Socket", "inet:65536@127.0.0.1"),
        ("Socket", "inet:@127.0.0.1"), ("Socket", "inet:+80@127.0.0.1"), ("Socket", "inet:80@999.0.0.1"),
        ("Socket", "inet:80@::1"), ("Socket", "inet6:80@[127.0.0.1]"), ("Socket", "inet:80@mail.example.com"),
        ("Socket", "unix:relative.sock"), ("Socket", "unix:"), ("Socket", "8891"), ("Socket", "inet:123456@127.0.0.1"),
        ("Socket", "inet6:80@[::1"), ("Socket", "/" + String(repeating: "s", count: 120)),
        ("SocketMode", "0888"), ("SocketMode", "1777"), ("SocketMode", "07777"), ("SocketMode", "rw-rw----"),
        ("SocketMode", "0x1b0"),
        ("UserID", "a:b:c"), ("UserID", ":mail"), ("UserID", "smime:"), ("UserID", "-x"), ("UserID", "us er"),
        ("UserID", "we$rd"),
        ("PidFile", "run/a\u{7}b.pid"),
        ("Mode", "x"), ("Mode", "ss"), ("Mode", "svx"), ("Mode", "sign"),
        ("AuthservID", "a;b"), ("AuthservID", "x\"y"), ("AuthservID", "mail example"), ("AuthservID", "h\u{e9}te"),
        ("InternalHosts", "127.0.0.1, localhost"), ("InternalHosts", "10.0.0.0/33"), ("InternalHosts", "csl:"),
        ("InternalHosts", "10.1.2.3/8"),
        ("CertificateDir", "cer\u{1}ts"),
        ("Digest", "md5"), ("Digest", "sha1"), ("Digest", "sha-999"),
        ("OnError", "reject"), ("OnError", "tempfail accept"),
        ("LogLevel", "verbose"), ("LogLevel", "7"),
    ])
    func badValueIsReported(key: String, value: String) {
        let error = configurationError { try parseConfig("\(key) \(value)") }
        #expect(error?.line == 1)
        #expect(error?.description.hasPrefix("t.conf:1: bad value for \(key): ") == true,
                "got \(error?.description ?? "no error")")
    }

    @Test func socketForms() throws {
        let cases: [(String, SocketSpec)] = [
            ("inet:8891@127.0.0.1", .inet(host: "127.0.0.1", port: 8891)),
            ("INET:25@LocalHost", .inet(host: "127.0.0.1", port: 25)),
            ("inet:1", .inet(host: "0.0.0.0", port: 1)),
            ("inet:65535@192.0.2.7", .inet(host: "192.0.2.7", port: 65535)),
            ("inet6:8891@[::1]", .inet6(host: "::1", port: 8891)),
            ("inet6:8891@::1", .inet6(host: "::1", port: 8891)),
            ("inet6:8891@[0:0:0:0:0:0:0:1]", .inet6(host: "::1", port: 8891)),
            ("inet6:8891@localhost", .inet6(host: "::1", port: 8891)),
            ("inet6:10025", .inet6(host: "::", port: 10025)),
            ("unix:/run/smime/milter.sock", .unix(path: "/run/smime/milter.sock")),
            ("local:/run/smime/milter.sock", .unix(path: "/run/smime/milter.sock")),
            ("/var/spool/postfix/smime/milter.sock", .unix(path: "/var/spool/postfix/smime/milter.sock")),
        ]
        for (value, expected) in cases {
            let config = try parseConfig("Socket \(value)")
            #expect(config.process.socket == expected, "Socket \(value)")
            // The description is itself a valid value meaning the same socket.
            #expect(try SocketSpec.parse(expected.description) == expected)
        }
    }

    @Test func socketPortErrorSaysTheRange() {
        let error = configurationError { try parseConfig("Socket inet:70000@127.0.0.1") }
        #expect(error?.message.contains("1 to 65535") == true)
    }

    @Test func socketMode() throws {
        #expect(try parseConfig("SocketMode 0660").process.socketMode == 0o660)
        #expect(try parseConfig("SocketMode 600").process.socketMode == 0o600)
        #expect(try parseConfig("SocketMode 0777").process.socketMode == 0o777)
        #expect(try parseConfig("SocketMode 0").process.socketMode == 0)
    }

    @Test func userID() throws {
        #expect(try parseConfig("UserID smime-milter").process.userID == UserSpec(user: "smime-milter", group: nil))
        #expect(try parseConfig("UserID smime:mail").process.userID == UserSpec(user: "smime", group: "mail"))
        #expect(try parseConfig("UserID 110:120").process.userID == UserSpec(user: "110", group: "120"))
        #expect(try parseConfig("UserID host$").process.userID?.user == "host$")
    }

    @Test func pidFileIsResolvedAgainstTheConfigurationDirectory() throws {
        #expect(try parseConfig("PidFile /run/x.pid").process.pidFile == "/run/x.pid")
        #expect(try parseConfig("PidFile run/./x.pid", file: "/etc/smime/a.conf").process.pidFile == "/etc/smime/run/x.pid")
        #expect(try parseConfig("PidFile ../x.pid", file: "/etc/smime/a.conf").process.pidFile == "/etc/x.pid")
    }

    @Test func mode() throws {
        #expect(try parseConfig("Mode s").mode == [.sign])
        #expect(try parseConfig("Mode v").mode == [.verify])
        #expect(try parseConfig("Mode sv").mode == [.sign, .verify])
        #expect(try parseConfig("Mode VS").mode == [.sign, .verify])
        #expect(OperatingMode([.verify, .sign]).description == "sv")
    }

    @Test func authservID() throws {
        #expect(try parseConfig("AuthservID mail.example.com").authservID == "mail.example.com")
        #expect(try parseConfig("AuthservID mx-1_internal").authservID == "mx-1_internal")
    }

    @Test func internalHostsInline() throws {
        let config = try parseConfig("InternalHosts 192.0.2.0/24,2001:db8::/32  10.0.0.1")
        #expect(config.internalHosts.contains("192.0.2.200"))
        #expect(config.internalHosts.contains("2001:db8::25"))
        #expect(config.internalHosts.contains("10.0.0.1"))
        #expect(!config.internalHosts.contains("127.0.0.1"), "setting the key replaces the default")
        #expect(config.internalHosts.sourceFile == nil)

        let csl = try parseConfig("InternalHosts csl:10.0.0.0/8")
        #expect(csl.internalHosts.contains("10.2.3.4"))
    }

    @Test func internalHostsLoneWordHintsAtFileNames() {
        let error = configurationError { try parseConfig("InternalHosts internal-hosts") }
        #expect(error?.message.contains("a file name must start with /, ./, ../ or file:") == true)
    }

    @Test func internalHostsFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("hosts", "# internal\n192.0.2.0/24\n\n::1  # loopback\n")
        let conf = dir.path + "/a.conf"
        for value in ["./hosts", dir.path + "/hosts", "file:hosts", "FILE:" + dir.path + "/hosts"] {
            let config = try parseConfig("InternalHosts \(value)", file: conf)
            #expect(config.internalHosts.sourceFile == dir.path + "/hosts", "InternalHosts \(value)")
            #expect(config.internalHosts.contains("192.0.2.9"))
            #expect(config.internalHosts.contains("::1"))
            #expect(!config.internalHosts.contains("127.0.0.1"))
        }
    }

    @Test func internalHostsFileErrorsPointIntoTheFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let hosts = try dir.write("hosts", "127.0.0.1\n# fine\n10.0.0.0/8\nmail.example.com\n")
        let error = configurationError { try parseConfig("InternalHosts ./hosts", file: dir.path + "/a.conf") }
        #expect(error?.file == hosts)
        #expect(error?.line == 4)
        #expect(error?.message.contains("\"mail.example.com\"") == true)
    }

    @Test func missingTableFilesAreReportedAtTheConfigurationLine() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for key in ["InternalHosts", "SigningTable", "SenderMap"] {
            let error = configurationError {
                try parseConfig("# x\n\(key) ./missing", file: dir.path + "/a.conf")
            }
            #expect(error?.file == dir.path + "/a.conf")
            #expect(error?.line == 2)
            #expect(error?.message.hasPrefix("\(key): cannot read \"\(dir.path)/missing\"") == true,
                    "got \(error?.description ?? "nothing")")
        }
    }

    @Test func certificateDirAndTrustAnchors() throws {
        let config = try parseConfig("CertificateDir certs\nTrustAnchors /etc/ssl/roots.pem", file: "/etc/smime/a.conf")
        #expect(config.certificateDir == "/etc/smime/certs")
        #expect(config.trustAnchors == "/etc/ssl/roots.pem")
    }

    @Test func signingTableAndSenderMapAreLoaded() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("signing.table", "*@example.org org opaque\n")
        try dir.write("sender.map", "boss@example.org boss,assistant\n")
        let config = try parseConfig("SigningTable signing.table\nSenderMap sender.map", file: dir.path + "/a.conf")
        #expect(config.signingTable?.lookup("x@example.org") == .sign(identity: "org", form: .opaque))
        #expect(config.senderMap?.allowedLogins(for: "boss@example.org") == ["boss", "assistant"])
    }

    @Test func tableFileErrorsReportTheirOwnFileAndLine() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let table = try dir.write("signing.table", "# rules\n*@example.org org\n\nbad-pattern org\n")
        let map = try dir.write("sender.map", "a@example.org a\na@example.org b\n")
        let tableError = configurationError { try parseConfig("\nSigningTable signing.table", file: dir.path + "/a.conf") }
        #expect(tableError?.file == table)
        #expect(tableError?.line == 4)
        #expect(tableError?.description.hasPrefix("\(table):4: bad pattern") == true)
        let mapError = configurationError { try parseConfig("SenderMap sender.map", file: dir.path + "/a.conf") }
        #expect(mapError?.description.hasPrefix("\(map):2: duplicate entry for a@example.org") == true)
    }

    @Test func digest() throws {
        #expect(try parseConfig("Digest sha256").digest == .sha256)
        #expect(try parseConfig("Digest SHA-384").digest == .sha384)
        #expect(try parseConfig("Digest sha512").digest == .sha512)
    }

    @Test func onError() throws {
        #expect(try parseConfig("OnError tempfail").onError == .tempfail)
        #expect(try parseConfig("OnError Accept").onError == .accept)
        let error = configurationError { try parseConfig("OnError reject") }
        #expect(error?.message == "bad value for OnError: \"reject\" (expected tempfail or accept)")
    }

    @Test func logLevel() throws {
        for level in LogLevel.allCases {
            #expect(try parseConfig("LogLevel \(level.rawValue.uppercased())").process.logLevel == level)
        }
        #expect(LogLevel.error < LogLevel.warning && LogLevel.warning < LogLevel.notice)
        #expect(LogLevel.notice < LogLevel.info && LogLevel.info < LogLevel.debug)
        let error = configurationError { try parseConfig("LogLevel verbose") }
        #expect(error?.message.contains("expected error, warning, notice, info or debug") == true)
    }

    @Test func booleansFollowOpenDKIM() throws {
        for text in ["yes", "YES", "true", "True", "1"] {
            #expect(try ValueParsers.boolean(text) == true)
        }
        for text in ["no", "No", "false", "FALSE", "0"] {
            #expect(try ValueParsers.boolean(text) == false)
        }
        for text in ["", "y", "on", "2", "yes please"] {
            #expect(throws: ValueProblem.self) { try ValueParsers.boolean(text) }
        }
    }

    @Test func everyKeyIsDocumented() {
        var names: Set<String> = []
        for key in ConfigurationKey.all {
            #expect(names.insert(key.name.lowercased()).inserted, "\(key.name) listed twice")
            #expect(!key.doc.isEmpty && !key.doc.contains("\n") && key.doc.hasSuffix("."), "\(key.name) doc")
            #expect(!key.syntax.isEmpty && !key.defaultValue.isEmpty, "\(key.name) syntax/default")
            #expect(ConfigurationKey.named(key.name.uppercased())?.name == key.name)
        }
    }
}
