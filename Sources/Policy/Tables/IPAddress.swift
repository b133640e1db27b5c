// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Numeric IP addresses as network-order bytes, parsed and printed by the C library.
enum IPAddress {
    /// The 4 bytes of a dotted-quad IPv4 address, or nil.
    static func v4(_ text: some StringProtocol) -> [UInt8]? {
        let string = String(text)
        // utf8.contains, not String.contains: Foundation's substring search costs thousands of
        // instructions, and this runs for every message (InternalHosts).
        guard string.utf8.count <= 15, !string.utf8.contains(0) else { return nil }
        var address = in_addr()
        let result = string.withCString { inet_pton(AF_INET, $0, &address) }
        guard result == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    /// The 16 bytes of an IPv6 address (any form inet_pton accepts), or nil.
    static func v6(_ text: some StringProtocol) -> [UInt8]? {
        let string = String(text)
        guard string.utf8.count <= 45, !string.utf8.contains(0) else { return nil }
        var address = in6_addr()
        let result = string.withCString { inet_pton(AF_INET6, $0, &address) }
        guard result == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), or nil.
    static func unmapped(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count == 16,
              bytes[0..<10].allSatisfy({ $0 == 0 }),
              bytes[10] == 0xFF, bytes[11] == 0xFF else { return nil }
        return Array(bytes[12..<16])
    }

    /// The conventional text form of 4 or 16 address bytes.
    static func format(_ bytes: [UInt8]) -> String {
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let ok = bytes.withUnsafeBytes { raw in
            buffer.withUnsafeMutableBufferPointer { out in
                inet_ntop(family, raw.baseAddress, out.baseAddress, socklen_t(out.count)) != nil
            }
        }
        guard ok else { return bytes.map { String($0) }.joined(separator: ".") }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
