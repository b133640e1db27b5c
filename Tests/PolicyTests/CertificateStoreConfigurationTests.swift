// SPDX-License-Identifier: Apache-2.0
@testable import Policy
import Testing

/// `CertificateStore` addresses (sqlite: and postgresql://) and the CertificateStore* keys.
@Suite struct CertificateStoreConfigurationTests {
    @Test func postgresqlAddressesWithOneOrSeveralHosts() throws {
        let one = try PostgreSQLAddress.parse("postgresql://smime@db.example.com/certs")
        #expect(one == PostgreSQLAddress(user: "smime", hosts: [.init(name: "db.example.com")], database: "certs"))
        let two = try PostgreSQLAddress.parse("postgresql://smime@10.0.0.1:6432,db2.example.com:5433/smime")
        #expect(two.hosts == [.init(name: "10.0.0.1", port: 6432), .init(name: "db2.example.com", port: 5433)])
        let six = try PostgreSQLAddress.parse("postgres://u@[::1]:7000,[2001:db8::5]/d")
        #expect(six.hosts == [.init(name: "::1", port: 7000), .init(name: "2001:db8::5", port: 5432)])
        // Shown with every port, IPv6 in brackets: parsing the description gives the same address.
        #expect(six.description == "postgresql://u@[::1]:7000,[2001:db8::5]:5432/d")
        #expect(try PostgreSQLAddress.parse(six.description) == six)
    }

    @Test(arguments: [
        ("postgresql://smime:secret@db/x", "no password in the address"),
        ("postgresql://db/x", "needs a user"),
        ("postgresql://u@db", "needs a database"),
        ("postgresql://u@db/", "database name"),
        ("postgresql://u@/x", "at least one host"),
        ("postgresql://u@a,,b/x", "empty host"),
        ("postgresql://u@db:0/x", "port must be a number from 1 to 65535"),
        ("postgresql://u@db:65536/x", "port must be a number"),
        ("postgresql://u@db:abc/x", "port must be a number"),
        ("postgresql://u@db/x?sslmode=disable", "no parameters"),
        ("postgresql://u@[::1/x", "missing ]"),
        ("postgresql://u@d%b/x", "not a host name"),
    ])
    func badAddressesSayWhatIsWrong(text: String, words: String) {
        #expect {
            try PostgreSQLAddress.parse(text)
        } throws: { error in
            "\(error)".contains(words)
        }
    }

    @Test func theKeysParseAndAnErrorNamesFileAndLine() throws {
        let defaults = try parseConfig("")
        #expect(defaults.certificateStore == .default)
        #expect(defaults.storeSettings == CertificateStoreSettings())
        #expect(defaults.storeSettings.onStoreError == .tempfail)
        let config = try parseConfig("""
            CertificateStore postgresql://smime@db1:5432,db2:5432/smime
            CertificateStorePasswordFile store.password
            CertificateStoreCAFile /etc/ssl/db-ca.pem
            CertificateStorePoolSize 16
            CertificateStoreTimeout 3
            CertificateStoreStaleness 30
            OnStoreError plaintext
            """, file: "/etc/smime-milter/smime-milter.conf")
        guard case .postgresql(let address) = config.certificateStore else {
            Issue.record("expected a PostgreSQL store")
            return
        }
        #expect(address.hosts.map(\.name) == ["db1", "db2"])
        #expect(config.storeSettings.passwordFile == "/etc/smime-milter/store.password")
        #expect(config.storeSettings.caFile == "/etc/ssl/db-ca.pem")
        #expect(config.storeSettings.poolSize == 16)
        #expect(config.storeSettings.timeout == 3)
        #expect(config.storeSettings.staleness == 30)
        #expect(config.storeSettings.onStoreError == .plaintext)
        // sqlite: relative to the configuration's directory, as before.
        #expect(try parseConfig("CertificateStore sqlite:r.sqlite", file: "/etc/x/c.conf").certificateStore == .sqlite(path: "/etc/x/r.sqlite"))
        for (line, words) in [("CertificateStore mysql://u@h/d", "expected sqlite:PATH or postgresql://"),
                              ("CertificateStore postgresql://u:pw@h/d", "CertificateStorePasswordFile"),
                              ("CertificateStorePoolSize 0", "1 to 256"), ("CertificateStoreStaleness 0", "1 to 3600"),
                              ("CertificateStoreTimeout 61", "1 to 60"), ("OnStoreError accept", "tempfail")] {
            let error = configurationError { try parseConfig("Mode v\n" + line, file: "t.conf") }
            #expect(error?.line == 2, "\(line)")
            #expect(error?.description.contains(words) == true, "\(line): \(String(describing: error))")
            #expect(error?.description.contains("pw") != true || !line.contains("pw@"), "a password is not repeated")
        }
    }
}
