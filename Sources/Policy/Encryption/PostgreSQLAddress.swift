// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A store address that cannot be used, in words for the configuration error or the command line.
public struct CertificateStoreAddressError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `postgresql://USER@HOST1[:PORT1][,HOST2[:PORT2]]/DB`: the database of the shared store.
///
/// Several hosts are a primary and its standbys: libpq tries them in order and keeps the one
/// that accepts writes (`target_session_attrs=read-write`), which is how a promoted standby is
/// found. No password here (it would be logged and shown by `check-config`):
/// `CertificateStorePasswordFile` holds it. No query parameters either: TLS, timeouts and
/// the session attributes are set by the milter from its own keys.
public struct PostgreSQLAddress: Sendable, Equatable, CustomStringConvertible {
    public struct Host: Sendable, Equatable {
        /// A name, an IPv4 address or an IPv6 address (without brackets).
        public var name: String
        public var port: Int
        public init(name: String, port: Int = 5432) {
            self.name = name
            self.port = port
        }
    }

    public var user: String
    public var hosts: [Host]
    public var database: String

    public init(user: String, hosts: [Host], database: String) {
        self.user = user
        self.hosts = hosts
        self.database = database
    }

    /// The address as written in the configuration (ports always shown).
    public var description: String {
        let hostList = hosts.map { host in
            (host.name.contains(":") ? "[\(host.name)]" : host.name) + ":\(host.port)"
        }.joined(separator: ",")
        return "postgresql://\(user)@\(hostList)/\(database)"
    }

    /// Parses the address; every mistake is named (no password, no query, a port in 1...65535).
    public static func parse(_ text: String) throws -> PostgreSQLAddress {
        var rest = Substring(text)
        for scheme in ["postgresql://", "postgres://"] where rest.lowercased().hasPrefix(scheme) {
            rest = rest.dropFirst(scheme.count)
        }
        guard rest.count < text.count else { throw CertificateStoreAddressError("expected postgresql://USER@HOST[:PORT]/DB") }
        guard !rest.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) else {
            throw CertificateStoreAddressError("blanks and control characters are not allowed in the address")
        }
        guard !rest.contains("?") else {
            throw CertificateStoreAddressError("no parameters in the address: TLS and timeouts come from the CertificateStore* keys")
        }
        guard let at = rest.lastIndex(of: "@") else {
            throw CertificateStoreAddressError("the address needs a user: postgresql://USER@HOST/DB")
        }
        let user = rest[..<at]
        guard !user.contains(":") else {
            throw CertificateStoreAddressError("no password in the address: put it in CertificateStorePasswordFile")
        }
        guard !user.isEmpty, !user.contains("/") else { throw CertificateStoreAddressError("the address needs a user: postgresql://USER@HOST/DB") }
        let afterUser = rest[rest.index(after: at)...]
        guard let slash = afterUser.firstIndex(of: "/") else {
            throw CertificateStoreAddressError("the address needs a database: postgresql://USER@HOST/DB")
        }
        let database = afterUser[afterUser.index(after: slash)...]
        guard !database.isEmpty, !database.contains("/") else {
            throw CertificateStoreAddressError("the address needs a database name after the host list")
        }
        let hostList = afterUser[..<slash]
        guard !hostList.isEmpty else { throw CertificateStoreAddressError("the address needs at least one host") }
        var hosts: [Host] = []
        for item in hostList.split(separator: ",", omittingEmptySubsequences: false) {
            hosts.append(try host(item))
        }
        return PostgreSQLAddress(user: String(user), hosts: hosts, database: String(database))
    }

    private static func host(_ item: Substring) throws -> Host {
        guard !item.isEmpty else { throw CertificateStoreAddressError("an empty host in the host list") }
        var name: Substring
        var portText: Substring?
        if item.hasPrefix("[") {
            guard let close = item.firstIndex(of: "]") else { throw CertificateStoreAddressError("\(item): missing ] after the IPv6 address") }
            name = item[item.index(after: item.startIndex)..<close]
            let after = item[item.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw CertificateStoreAddressError("\(item): expected :PORT after ]") }
                portText = after.dropFirst()
            }
        } else if let colon = item.firstIndex(of: ":") {
            name = item[..<colon]
            portText = item[item.index(after: colon)...]
        } else {
            name = item
        }
        guard !name.isEmpty else { throw CertificateStoreAddressError("\(item): a host name is missing") }
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || "-._:".contains($0) }) else {
            throw CertificateStoreAddressError("\(item): not a host name or address")
        }
        var port = 5432
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw CertificateStoreAddressError("\(item): the port must be a number from 1 to 65535")
            }
            port = value
        }
        return Host(name: String(name), port: port)
    }
}
