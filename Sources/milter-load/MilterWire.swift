// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

/// Milter protocol version 6 constants, written out from the protocol (libmilter's `mfdef.h`)
/// rather than imported, so that the load generator is an independent implementation that
/// checks the milter's side of the wire.
enum Wire {
    static let version: UInt32 = 6

    // Commands (MTA to milter).
    static let abort = UInt8(ascii: "A")
    static let body = UInt8(ascii: "B")
    static let connect = UInt8(ascii: "C")
    static let macro = UInt8(ascii: "D")
    static let endOfBody = UInt8(ascii: "E")
    static let helo = UInt8(ascii: "H")
    static let header = UInt8(ascii: "L")
    static let mail = UInt8(ascii: "M")
    static let endOfHeaders = UInt8(ascii: "N")
    static let optionNegotiation = UInt8(ascii: "O")
    static let quit = UInt8(ascii: "Q")
    static let rcpt = UInt8(ascii: "R")
    static let data = UInt8(ascii: "T")

    // Replies (milter to MTA).
    static let addRcpt = UInt8(ascii: "+")
    static let delRcpt = UInt8(ascii: "-")
    static let addRcptPar = UInt8(ascii: "2")
    static let shutdown = UInt8(ascii: "4")
    static let accept = UInt8(ascii: "a")
    static let replaceBody = UInt8(ascii: "b")
    static let `continue` = UInt8(ascii: "c")
    static let discard = UInt8(ascii: "d")
    static let changeFrom = UInt8(ascii: "e")
    static let connectionFailure = UInt8(ascii: "f")
    static let addHeader = UInt8(ascii: "h")
    static let insertHeader = UInt8(ascii: "i")
    static let setSymbolList = UInt8(ascii: "l")
    static let changeHeader = UInt8(ascii: "m")
    static let progress = UInt8(ascii: "p")
    static let quarantine = UInt8(ascii: "q")
    static let reject = UInt8(ascii: "r")
    static let skip = UInt8(ascii: "s")
    static let tempfail = UInt8(ascii: "t")
    static let replyCode = UInt8(ascii: "y")

    // Actions the MTA offers (SMFIF_*).
    static let allActions: UInt32 = 0x1FF
    static let changeBody: UInt32 = 0x2
    static let changeHeaders: UInt32 = 0x10

    // Protocol steps (SMFIP_*): the MTA offers all; the milter returns those it wants.
    static let noConnect: UInt32 = 0x1
    static let noHelo: UInt32 = 0x2
    static let noMail: UInt32 = 0x4
    static let noRcpt: UInt32 = 0x8
    static let noBody: UInt32 = 0x10
    static let noHeaders: UInt32 = 0x20
    static let noEOH: UInt32 = 0x40
    static let noReplyHeader: UInt32 = 0x80
    static let noUnknown: UInt32 = 0x100
    static let noData: UInt32 = 0x200
    static let skipAllowed: UInt32 = 0x400
    static let rcptRejected: UInt32 = 0x800
    static let noReplyConnect: UInt32 = 0x1000
    static let noReplyHelo: UInt32 = 0x2000
    static let noReplyMail: UInt32 = 0x4000
    static let noReplyRcpt: UInt32 = 0x8000
    static let noReplyData: UInt32 = 0x10000
    static let noReplyUnknown: UInt32 = 0x20000
    static let noReplyEOH: UInt32 = 0x40000
    static let noReplyBody: UInt32 = 0x80000
    static let headerLeadingSpace: UInt32 = 0x100000
    static let allProtocol: UInt32 = 0x1FFFFF

    /// Largest body chunk the MTA sends (MILTER_CHUNK_SIZE).
    static let chunkSize = 65_535
    /// Largest packet we accept from a milter; libmilter refuses larger ones too.
    static let maximumPacket = 1 << 30

    /// Appends one packet (length, command, data) to `out`.
    static func append(_ command: UInt8, _ payload: some Collection<UInt8>, to out: inout [UInt8]) {
        let length = UInt32(payload.count + 1)
        appendUInt32(length, to: &out)
        out.append(command)
        out.append(contentsOf: payload)
    }

    static func appendUInt32(_ value: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: value >> 24))
        out.append(UInt8(truncatingIfNeeded: value >> 16))
        out.append(UInt8(truncatingIfNeeded: value >> 8))
        out.append(UInt8(truncatingIfNeeded: value))
    }

    static func readUInt32(_ bytes: ArraySlice<UInt8>, at offset: Int) -> UInt32? {
        let start = bytes.startIndex + offset
        guard offset >= 0, start + 4 <= bytes.endIndex else { return nil }
        return UInt32(bytes[start]) << 24 | UInt32(bytes[start + 1]) << 16
            | UInt32(bytes[start + 2]) << 8 | UInt32(bytes[start + 3])
    }

    /// NUL-terminated strings, as in header and macro packets.
    static func cStrings(_ strings: [String]) -> [UInt8] {
        var out: [UInt8] = []
        for s in strings {
            out.append(contentsOf: Array(s.utf8))
            out.append(0)
        }
        return out
    }

    /// Splits `payload` into its NUL-terminated strings; nil if the last one is not terminated.
    static func splitCStrings(_ payload: ArraySlice<UInt8>) -> [ArraySlice<UInt8>]? {
        guard payload.isEmpty || payload.last == 0 else { return nil }
        var parts: [ArraySlice<UInt8>] = []
        var start = payload.startIndex
        for i in payload.indices where payload[i] == 0 {
            parts.append(payload[start..<i])
            start = i + 1
        }
        return parts
    }
}

/// One packet as read from the wire.
struct Packet {
    let command: UInt8
    let payload: ArraySlice<UInt8>
}
