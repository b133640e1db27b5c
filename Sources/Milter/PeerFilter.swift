// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CMilter
import Policy

/// The kernel filter that enforces `AllowedPeers` on an inet listening socket: a classic BPF
/// program (SO_ATTACH_FILTER) that passes packets whose source address is in the list and
/// drops every other packet.
///
/// Why a kernel filter and not a check after accept: libmilter accepts connections itself and
/// tells the filter nothing about the peer (the client address in SMFIC_CONNECT is whatever the
/// peer claims). The kernel drops a refused peer's SYN before any accept, so not one byte of
/// it reaches libmilter. The price: the milter never sees refused peers, so it cannot log or
/// count them (docs/security.md says how an administrator sees them).
///
/// Accepted sockets inherit the filter, which passes their packets as it passed the SYN.
/// On an AF_INET6 socket, IPv4 peers (v4-mapped) arrive as IPv4 packets: the program branches
/// on the IP version nibble and checks the IPv4 entries for them.
public enum PeerFilter {
    /// One classic BPF instruction (`struct sock_filter`).
    public struct Instruction: Sendable, Equatable, CustomStringConvertible {
        public let code: UInt16
        public let jt: UInt8
        public let jf: UInt8
        public let k: UInt32

        public var description: String { "{ 0x\(String(code, radix: 16)), \(jt), \(jf), 0x\(String(k, radix: 16)) }" }
    }

    /// The list needs more instructions than the kernel accepts in one program.
    public struct TooLarge: Error, CustomStringConvertible {
        public let instructions: Int
        public let entries: Int
        public var description: String {
            "AllowedPeers: \(entries) entries need a kernel filter of \(instructions) instructions, more than the kernel's "
                + "\(PeerFilter.maximumInstructions); use fewer, wider networks (about 2000 IPv4 addresses or 450 IPv6 addresses fit)"
        }
    }

    /// BPF_MAXINSNS: the kernel refuses longer classic programs.
    public static let maximumInstructions = 4096

    // Opcodes (linux/filter.h); spelled out so the compiler is a pure function of the list.
    static let loadWord: UInt16 = 0x20      // BPF_LD | BPF_W | BPF_ABS
    static let loadByte: UInt16 = 0x30      // BPF_LD | BPF_B | BPF_ABS
    static let andConstant: UInt16 = 0x54   // BPF_ALU | BPF_AND | BPF_K
    static let jumpEqual: UInt16 = 0x15     // BPF_JMP | BPF_JEQ | BPF_K
    static let jumpAlways: UInt16 = 0x05    // BPF_JMP | BPF_JA
    static let returnConstant: UInt16 = 0x06 // BPF_RET | BPF_K
    /// SKF_NET_OFF: loads relative to the network (IP) header.
    static let networkOffset = UInt32(bitPattern: -0x100000)
    /// The return values: keep the whole packet, or drop it.
    static let pass = UInt32.max
    static let drop: UInt32 = 0

    /// The program for `list`, following `NetworkList.contains`: the most specific entry
    /// decides, a negated entry wins at equal length, and IPv6 entries never cover IPv4 peers.
    ///
    /// Entries are tried longest prefix first, so the first match is the most specific one.
    /// Each match is followed by its own return, so no jump is longer than one entry (classic
    /// BPF's conditional jumps reach at most 255 instructions ahead).
    public static func compile(_ list: NetworkList) throws -> [Instruction] {
        func order(_ a: NetworkList.Entry, _ b: NetworkList.Entry) -> Bool {
            a.prefixLength != b.prefixLength ? a.prefixLength > b.prefixLength : (a.negated && !b.negated)
        }
        let v4 = list.entries.filter(\.isIPv4).sorted(by: order)
        let v6 = list.entries.filter { !$0.isIPv4 }.sorted(by: order)
        let v4Section = ipv4Section(v4)
        var program: [Instruction] = [
            Instruction(code: loadByte, jt: 0, jf: 0, k: networkOffset),
            Instruction(code: andConstant, jt: 0, jf: 0, k: 0xF0),
            Instruction(code: jumpEqual, jt: 2, jf: 0, k: 0x60),
            Instruction(code: jumpEqual, jt: 2, jf: 0, k: 0x40),
            Instruction(code: returnConstant, jt: 0, jf: 0, k: drop),
            // The IPv6 section follows the IPv4 one, which may be longer than a conditional jump.
            Instruction(code: jumpAlways, jt: 0, jf: 0, k: UInt32(v4Section.count)),
        ]
        program += v4Section
        program += ipv6Section(v6)
        guard program.count <= maximumInstructions else {
            throw TooLarge(instructions: program.count, entries: list.entries.count)
        }
        return program
    }

    /// Checks of the IPv4 source address (at offset 12 of the IPv4 header), one load and mask
    /// per prefix length.
    private static func ipv4Section(_ entries: [NetworkList.Entry]) -> [Instruction] {
        var out: [Instruction] = []
        var index = 0
        while index < entries.count {
            let prefix = entries[index].prefixLength
            if prefix == 0 {
                out.append(Instruction(code: returnConstant, jt: 0, jf: 0, k: entries[index].negated ? drop : pass))
                return out  // covers every address: nothing after it is reached
            }
            out.append(Instruction(code: loadWord, jt: 0, jf: 0, k: networkOffset &+ 12))
            if prefix < 32 { out.append(Instruction(code: andConstant, jt: 0, jf: 0, k: mask(prefix))) }
            while index < entries.count, entries[index].prefixLength == prefix {
                let entry = entries[index]
                out.append(Instruction(code: jumpEqual, jt: 0, jf: 1, k: word(entry.bytes, 0)))
                out.append(Instruction(code: returnConstant, jt: 0, jf: 0, k: entry.negated ? drop : pass))
                index += 1
            }
        }
        out.append(Instruction(code: returnConstant, jt: 0, jf: 0, k: drop))
        return out
    }

    /// Checks of the IPv6 source address (four words from offset 8 of the IPv6 header), each
    /// entry comparing only the words its prefix covers.
    private static func ipv6Section(_ entries: [NetworkList.Entry]) -> [Instruction] {
        var out: [Instruction] = []
        for entry in entries {
            let result = entry.negated ? drop : pass
            guard entry.prefixLength > 0 else {
                out.append(Instruction(code: returnConstant, jt: 0, jf: 0, k: result))
                return out
            }
            var block: [(load: Instruction, mask: Instruction?, value: UInt32)] = []
            var bits = entry.prefixLength
            for w in 0..<4 where bits > 0 {
                let covered = min(bits, 32)
                block.append((Instruction(code: loadWord, jt: 0, jf: 0, k: networkOffset &+ 8 &+ UInt32(4 * w)),
                              covered < 32 ? Instruction(code: andConstant, jt: 0, jf: 0, k: mask(covered)) : nil,
                              word(entry.bytes, w)))
                bits -= covered
            }
            // Instructions after each comparison up to the end of the block (its return included).
            var remaining = block.reduce(0) { $0 + ($1.mask == nil ? 2 : 3) } + 1
            for part in block {
                out.append(part.load)
                remaining -= 1
                if let m = part.mask {
                    out.append(m)
                    remaining -= 1
                }
                remaining -= 1
                out.append(Instruction(code: jumpEqual, jt: 0, jf: UInt8(remaining), k: part.value))
            }
            out.append(Instruction(code: returnConstant, jt: 0, jf: 0, k: result))
        }
        out.append(Instruction(code: returnConstant, jt: 0, jf: 0, k: drop))
        return out
    }

    /// The 32-bit mask of the first `bits` bits (1...32).
    private static func mask(_ bits: Int) -> UInt32 {
        bits >= 32 ? UInt32.max : ~(UInt32.max >> UInt32(bits))
    }

    /// Word `index` of network-order address bytes, as BPF loads it (big-endian).
    private static func word(_ bytes: [UInt8], _ index: Int) -> UInt32 {
        bytes[(4 * index)..<(4 * index + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Packets the socket `fd` has dropped (`SK_MEMINFO_DROPS` of SO_MEMINFO, the `d` that
    /// `ss -m` shows). On a listening socket with the filter these are, in practice, the SYNs
    /// (and their retransmissions) of refused peers: the one trace of them we can read.
    public static func droppedPackets(fd: Int32) -> Int? {
        #if os(Linux)
        var info = [UInt32](repeating: 0, count: 16)
        var length = socklen_t(info.count * MemoryLayout<UInt32>.size)
        let dropsIndex = 8  // SK_MEMINFO_DROPS
        guard fd >= 0, getsockopt(fd, SOL_SOCKET, SO_MEMINFO, &info, &length) == 0,
              Int(length) >= (dropsIndex + 1) * MemoryLayout<UInt32>.size else { return nil }
        return Int(info[dropsIndex])
        #else
        return nil
        #endif
    }

    /// Attaches `program` to the socket `fd` (before listen(2), so that no connection is
    /// queued unfiltered).
    static func attach(_ program: [Instruction], to fd: Int32) throws {
        #if os(Linux)
        var filters = program.map { sock_filter(code: $0.code, jt: $0.jt, jf: $0.jf, k: $0.k) }
        let rc = filters.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var fprog = sock_fprog(len: UInt16(buffer.count), filter: buffer.baseAddress)
            return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, socklen_t(MemoryLayout<sock_fprog>.size))
        }
        guard rc == 0 else {
            throw ListeningSocket.Failure(description: "cannot attach the AllowedPeers filter (SO_ATTACH_FILTER): \(ListeningSocket.errnoText())")
        }
        #else
        throw ListeningSocket.Failure(description: "AllowedPeers needs Linux socket filters; set AllowedPeers any and use a firewall")
        #endif
    }
}
