// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A milter that accepts every message unchanged and does nothing else: the load generator's
/// own ceiling is measured against it. It asks for every no-reply flag the MTA offers, so only
/// negotiation and end-of-message are answered. With `answersSMTPSteps` it answers connect,
/// HELO, MAIL, RCPT and DATA as smime-milter does, which an MTA writing with Nagle's algorithm
/// on (Postfix over TCP) needs to avoid delayed-ACK stalls: the form for measuring the MTA's
/// own cost of the milter protocol. With `replay` it answers every end-of-message with the same
/// edits (changed header fields, a replaced body) before accepting: what a signing milter's result
/// costs the MTA (the edits applied to the queue file, a larger message to deliver), without
/// any signing.
enum AcceptAllServer {
    /// Edits sent at every end-of-message: the MIME header fields (MIME-Version, Content-*) and
    /// the body of a message, e.g. one a signing milter produced.
    struct Replay: Sendable {
        var fields: [(name: String, value: String)]
        var body: [UInt8]

        init(message: MessageTemplate) {
            fields = message.fields.filter {
                let name = $0.name.lowercased()
                return name == "mime-version" || name.hasPrefix("content-")
            }
            body = message.body
        }

        /// The edit packets, built once: SMFIR_CHGHEADER of the first field of each name (which
        /// the MTA adds where the message has none), then SMFIR_REPLBODY in chunks of at most
        /// 65,535 bytes.
        var packets: [UInt8] {
            var out: [UInt8] = []
            for f in fields {
                var payload: [UInt8] = []
                Wire.appendUInt32(1, to: &payload)
                payload += Array(f.name.utf8) + [0] + Array(f.value.utf8) + [0]
                Wire.append(Wire.changeHeader, payload, to: &out)
            }
            var start = 0
            while start < body.count {
                let end = min(start + Wire.chunkSize, body.count)
                Wire.append(Wire.replaceBody, body[start..<end], to: &out)
                start = end
            }
            return out
        }
    }

    static func serve(_ endpoint: Endpoint, answersSMTPSteps: Bool = false, replay: Replay? = nil) throws -> Never {
        let domain: Int32
        if case let .unix(path) = endpoint { domain = AF_UNIX; unlink(path) } else { domain = AF_INET }
        let listener = socket(domain, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw SocketError("socket") }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = try withSocketAddress(endpoint) { bind(listener, $0, $1) }
        guard rc == 0 else { throw SocketError("bind \(endpoint)") }
        if case let .unix(path) = endpoint { chmod(path, 0o666) }
        guard listen(listener, 512) == 0 else { throw SocketError("listen") }
        let edits = replay?.packets ?? []
        // Unbuffered, so that a script waiting for this line sees it at once.
        FileHandle.standardOutput.write(Data("accept-all milter listening on \(endpoint)\n".utf8))
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 { continue }
            if case .inet = endpoint {
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            let thread = Thread {
                serveConnection(Connection(fd: fd), answersSMTPSteps: answersSMTPSteps, edits: edits)
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    private static func serveConnection(_ connection: Connection, answersSMTPSteps: Bool, edits: [UInt8]) {
        let contentSteps = Wire.noReplyEOH | Wire.noReplyBody | Wire.noReplyHeader
        let noReply = answersSMTPSteps ? contentSteps
            : contentSteps | Wire.noReplyConnect | Wire.noReplyHelo | Wire.noReplyMail | Wire.noReplyRcpt
                | Wire.noReplyData | Wire.noReplyUnknown
        var steps: UInt32 = 0
        do {
            while let packet = try connection.readPacket() {
                var reply: [UInt8] = []
                switch packet.command {
                case Wire.optionNegotiation:
                    let offered = Wire.readUInt32(packet.payload, at: 8) ?? 0
                    steps = offered & (noReply | Wire.noHelo | Wire.noUnknown | (answersSMTPSteps ? 0 : Wire.noData))
                    var payload: [UInt8] = []
                    Wire.appendUInt32(Wire.version, to: &payload)
                    // Actions: header changes and body replacement when there are edits to send.
                    Wire.appendUInt32(edits.isEmpty ? 0 : Wire.changeHeaders | Wire.changeBody, to: &payload)
                    Wire.appendUInt32(steps, to: &payload)
                    Wire.append(Wire.optionNegotiation, payload, to: &reply)
                case Wire.endOfBody:
                    reply = edits
                    Wire.append(Wire.accept, [], to: &reply)
                case Wire.quit:
                    return
                case Wire.macro, Wire.abort:
                    break
                default:
                    // A step the MTA did not agree to leave unanswered.
                    if !answeredSilently(packet.command, steps) { Wire.append(Wire.continue, [], to: &reply) }
                }
                if !reply.isEmpty { try connection.write(reply) }
            }
        } catch {
            return
        }
    }

    private static func answeredSilently(_ command: UInt8, _ steps: UInt32) -> Bool {
        switch command {
        case Wire.connect: return steps & Wire.noReplyConnect != 0
        case Wire.helo: return steps & Wire.noReplyHelo != 0
        case Wire.mail: return steps & Wire.noReplyMail != 0
        case Wire.rcpt: return steps & Wire.noReplyRcpt != 0
        case Wire.data: return steps & Wire.noReplyData != 0
        case Wire.header: return steps & Wire.noReplyHeader != 0
        case Wire.endOfHeaders: return steps & Wire.noReplyEOH != 0
        case Wire.body: return steps & Wire.noReplyBody != 0
        default: return steps & Wire.noReplyUnknown != 0
        }
    }
}
