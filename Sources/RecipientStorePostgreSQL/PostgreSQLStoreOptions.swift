// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy

/// How to reach the shared store: the address and the `CertificateStore*` keys, turned into
/// libpq connection parameters.
public struct PostgreSQLStoreOptions: Sendable {
    public var address: PostgreSQLAddress
    /// The password (from `CertificateStorePasswordFile`); never in a message.
    public var password: String?
    /// `CertificateStoreCAFile`: TLS with `sslmode=verify-full` when set.
    public var caFile: String?
    public var poolSize: Int
    /// Seconds: connect_timeout, statement_timeout, lock_timeout and the wait for a pooled connection.
    public var timeout: Double

    public init(address: PostgreSQLAddress, password: String? = nil, caFile: String? = nil, poolSize: Int = 8, timeout: Double = 2) {
        self.address = address
        self.password = password
        self.caFile = caFile
        self.poolSize = max(1, poolSize)
        self.timeout = max(1, timeout)
    }

    /// The options of a configuration whose `CertificateStore` is this address; reads the
    /// password file (first line, without its line end).
    public static func from(_ address: PostgreSQLAddress, settings: CertificateStoreSettings) throws -> PostgreSQLStoreOptions {
        var password: String?
        if let file = settings.passwordFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw RecipientStoreError(.unavailable, "CertificateStorePasswordFile \(file): cannot read the file")
            }
            // "\r\n" is one Character in Swift: split on every kind of line end.
            password = String(decoding: data, as: UTF8.self).split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
                .first.map(String.init)
        }
        return PostgreSQLStoreOptions(address: address, password: password, caFile: settings.caFile,
                                      poolSize: settings.poolSize, timeout: settings.timeout)
    }

    /// libpq's keyword/value parameters. Several hosts with `target_session_attrs=read-write`:
    /// libpq tries them in order and keeps the primary, so a promoted standby is found by the
    /// next connection without a restart.
    public var connectionParameters: [(String, String)] {
        let milliseconds = Int(timeout * 1000)
        var parameters: [(String, String)] = [
            ("host", address.hosts.map(\.name).joined(separator: ",")),
            ("port", address.hosts.map { String($0.port) }.joined(separator: ",")),
            ("dbname", address.database),
            ("user", address.user),
            // libpq counts connect_timeout per host, and takes at least 2 seconds.
            ("connect_timeout", String(max(2, Int(timeout.rounded(.up))))),
            ("target_session_attrs", "read-write"),
            ("application_name", "smime-milter"),
            ("options", "-c statement_timeout=\(milliseconds) -c lock_timeout=\(milliseconds) -c idle_in_transaction_session_timeout=\(max(milliseconds * 5, 10_000))"),
            // A dead peer is noticed by the kernel, not only at the next statement.
            ("keepalives", "1"), ("keepalives_idle", "10"), ("keepalives_interval", "5"), ("keepalives_count", "3"),
        ]
        if let caFile {
            parameters += [("sslmode", "verify-full"), ("sslrootcert", caFile)]
        } else {
            parameters.append(("sslmode", "disable"))
        }
        if let password { parameters.append(("password", password)) }
        return parameters
    }
}
