// SPDX-License-Identifier: Apache-2.0
import CLibPQ
import Foundation
import Policy

/// What a PostgreSQL call failed with, by kind (the `errors by kind` metric and the log line).
struct PostgreSQLFailure: Error, CustomStringConvertible {
    enum Kind: String {
        /// No connection could be made (every host down, refused, TLS, authentication).
        case connect
        /// The statement ran out of its time budget (statement_timeout, lock_timeout).
        case timeout
        /// The connection broke during the call.
        case connection
        /// The server refused the statement (constraint, syntax, read-only standby).
        case query
        /// Every pooled connection stayed lent out for the whole time budget.
        case poolExhausted = "pool_exhausted"
    }

    let kind: Kind
    let message: String
    /// SQLSTATE when the server answered.
    var state: String?

    var description: String { message }
}

/// One libpq connection, used by one thread at a time (the pool lends it out).
final class PostgreSQLConnection {
    let handle: OpaquePointer

    /// Connects with libpq's keyword/value parameters (values are never parsed as a string, so
    /// a password with blanks or quotes is passed as it is).
    init(parameters: [(String, String)]) throws {
        let keys = parameters.map { strdup($0.0) } + [nil]
        let values = parameters.map { strdup($0.1) } + [nil]
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        let made: OpaquePointer? = keys.map { UnsafePointer($0) }.withUnsafeBufferPointer { k in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { v in
                PQconnectdbParams(k.baseAddress, v.baseAddress, 0)
            }
        }
        guard let made else { throw PostgreSQLFailure(kind: .connect, message: "libpq could not allocate a connection") }
        guard PQstatus(made) == CONNECTION_OK else {
            let message = Self.message(made)
            PQfinish(made)
            throw PostgreSQLFailure(kind: .connect, message: "cannot connect: \(message)")
        }
        // Server notices ("relation already exists, skipping") are not for the operator's terminal.
        PQsetNoticeProcessor(made, { _, _ in }, nil)
        handle = made
    }

    deinit { PQfinish(handle) }

    /// Whether the connection is still usable (a broken one is closed, not pooled again).
    var isHealthy: Bool { PQstatus(handle) == CONNECTION_OK && PQtransactionStatus(handle) == PQTRANS_IDLE }

    /// The server the connection went to (`host:port`), for `check-config`.
    var server: String {
        let host = PQhost(handle).map { String(cString: $0) } ?? "?"
        let port = PQport(handle).map { String(cString: $0) } ?? "?"
        return "\(host):\(port)"
    }

    /// Runs one statement with text parameters; returns the rows as text (nil for NULL).
    @discardableResult
    func execute(_ sql: String, _ parameters: [String?] = []) throws -> [[String?]] {
        let copies = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        // Without parameters, PQexec (which also runs several statements: the migrations).
        let result: OpaquePointer? = parameters.isEmpty ? PQexec(handle, sql) : copies.map { UnsafePointer($0) }.withUnsafeBufferPointer { values in
            PQexecParams(handle, sql, Int32(parameters.count), nil, values.baseAddress, nil, nil, 0)
        }
        guard let result else {
            throw PostgreSQLFailure(kind: .connection, message: Self.message(handle))
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let text = PQresultErrorMessage(result).map { String(cString: $0) }?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "error"
            let kind: PostgreSQLFailure.Kind
            if PQstatus(handle) != CONNECTION_OK {
                kind = .connection
            } else if state == "57014" || state == "55P03" {
                kind = .timeout // query_canceled (statement_timeout), lock_not_available (lock_timeout)
            } else if let state, state.hasPrefix("08") || state.hasPrefix("57P") || state == "25006" {
                kind = .connection // connection exception, admin shutdown, read-only (a demoted primary)
            } else {
                kind = .query
            }
            throw PostgreSQLFailure(kind: kind, message: text, state: state)
        }
        var rows: [[String?]] = []
        let count = PQntuples(result)
        let columns = PQnfields(result)
        rows.reserveCapacity(Int(count))
        for row in 0..<count {
            var values: [String?] = []
            for column in 0..<columns {
                if PQgetisnull(result, row, column) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, row, column)))
                }
            }
            rows.append(values)
        }
        return rows
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    static func message(_ handle: OpaquePointer) -> String {
        guard let text = PQerrorMessage(handle) else { return "unknown libpq error" }
        let message = String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
        return message.isEmpty ? "unknown libpq error" : message.replacingOccurrences(of: "\n", with: "; ")
    }
}

/// bytea in PostgreSQL's text form (`\x` and hexadecimal), both ways.
enum ByteaText {
    static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: 2 + bytes.count * 2)
        out[0] = UInt8(ascii: "\\")
        out[1] = UInt8(ascii: "x")
        for (i, byte) in bytes.enumerated() {
            out[2 + 2 * i] = digits[Int(byte >> 4)]
            out[3 + 2 * i] = digits[Int(byte & 0x0F)]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) throws -> [UInt8] {
        let chars = Array(text.utf8)
        guard chars.count >= 2, chars[0] == UInt8(ascii: "\\"), chars[1] == UInt8(ascii: "x"), chars.count % 2 == 0 else {
            throw RecipientStoreError(.corrupt, "a bytea value in the store is not in hex form")
        }
        func nibble(_ c: UInt8) throws -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: throw RecipientStoreError(.corrupt, "a bytea value in the store is not in hex form")
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity((chars.count - 2) / 2)
        var i = 2
        while i < chars.count {
            out.append(try nibble(chars[i]) << 4 | nibble(chars[i + 1]))
            i += 2
        }
        return out
    }
}
