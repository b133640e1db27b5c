// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

/// Text form of the client address libmilter passes to `connect`.
enum SocketAddress {
    static func describe(_ address: UnsafeMutablePointer<sockaddr>?) -> (String?, Int?) {
        guard let address else { return (nil, nil) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                var a = sin.pointee.sin_addr
                guard inet_ntop(AF_INET, &a, &buffer, socklen_t(buffer.count)) != nil else { return (nil, nil) }
                return (String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self), Int(UInt16(bigEndian: sin.pointee.sin_port)))
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                var a = sin6.pointee.sin6_addr
                guard inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count)) != nil else { return (nil, nil) }
                return (String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self), Int(UInt16(bigEndian: sin6.pointee.sin6_port)))
            }
        default:
            return (nil, nil)
        }
    }
}
