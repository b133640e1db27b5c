// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy
@testable import RecipientStorePostgreSQL
import Testing

/// What the shared store asks libpq for (no server needed): hosts in order with the read-write
/// session, TLS verify-full with a CA, the time budget, the password from its file; bytea text.
@Suite struct ConnectionParametersTests {
    static func value(_ parameters: [(String, String)], _ key: String) -> String? {
        parameters.first { $0.0 == key }?.1
    }

    @Test func severalHostsAreTriedInOrderForAReadWriteSession() throws {
        let address = try PostgreSQLAddress.parse("postgresql://smime@db1:5432,db2:6432/certs")
        let parameters = PostgreSQLStoreOptions(address: address, timeout: 3).connectionParameters
        #expect(Self.value(parameters, "host") == "db1,db2")
        #expect(Self.value(parameters, "port") == "5432,6432")
        #expect(Self.value(parameters, "dbname") == "certs")
        #expect(Self.value(parameters, "user") == "smime")
        #expect(Self.value(parameters, "target_session_attrs") == "read-write")
        #expect(Self.value(parameters, "connect_timeout") == "3")
        #expect(Self.value(parameters, "options")?.contains("statement_timeout=3000") == true)
        #expect(Self.value(parameters, "sslmode") == "disable")
        #expect(Self.value(parameters, "password") == nil)
    }

    @Test func aCAFileMeansVerifyFullAndThePasswordComesFromItsFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pgopt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("pw").path
        try Data("s3cret with 'quotes'\r\nsecond line\n".utf8).write(to: URL(fileURLWithPath: file))
        var settings = CertificateStoreSettings()
        settings.passwordFile = file
        settings.caFile = "/etc/ssl/db-ca.pem"
        let options = try PostgreSQLStoreOptions.from(try PostgreSQLAddress.parse("postgresql://u@db/x"), settings: settings)
        let parameters = options.connectionParameters
        #expect(Self.value(parameters, "sslmode") == "verify-full")
        #expect(Self.value(parameters, "sslrootcert") == "/etc/ssl/db-ca.pem")
        #expect(Self.value(parameters, "password") == "s3cret with 'quotes'")
        // The store's name (in every message) never carries it.
        #expect(!PostgreSQLRecipientStore(options: options).name.contains("s3cret"))
        settings.passwordFile = directory.appendingPathComponent("missing").path
        #expect(throws: RecipientStoreError.self) { try PostgreSQLStoreOptions.from(try PostgreSQLAddress.parse("postgresql://u@db/x"), settings: settings) }
    }

    @Test func aStoreThatCannotConnectSaysSoWithoutAPassword() throws {
        // Port 1 on loopback: nothing listens, the refusal is immediate.
        let options = PostgreSQLStoreOptions(address: try PostgreSQLAddress.parse("postgresql://u@127.0.0.1:1/x"), password: "hunter2", timeout: 1)
        let store = PostgreSQLRecipientStore(options: options)
        #expect {
            try store.current(for: "a@x")
        } throws: { error in
            guard let error = error as? RecipientStoreError else { return false }
            return error.kind == .unavailable && error.message.contains(": connect: ") && !error.message.contains("hunter2")
        }
    }

    @Test func byteaTextRoundTrips() throws {
        let bytes: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x5C]
        #expect(ByteaText.encode(bytes) == "\\x00017f80ff5c")
        #expect(try ByteaText.decode(ByteaText.encode(bytes)) == bytes)
        #expect(try ByteaText.decode("\\x00017F80FF5C") == bytes)
        #expect(throws: RecipientStoreError.self) { try ByteaText.decode("\\x0") }
        #expect(throws: RecipientStoreError.self) { try ByteaText.decode("00") }
        let blob = IntermediatesBlob.encode([[1, 2], [], [3]])
        #expect(try IntermediatesBlob.decode(blob) == [[1, 2], [], [3]])
    }
}
