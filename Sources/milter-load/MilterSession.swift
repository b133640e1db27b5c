// SPDX-License-Identifier: Apache-2.0
/// What the milter asked for in option negotiation.
struct Negotiated: Sendable {
    var version: UInt32
    var actions: UInt32
    var steps: UInt32

    func has(_ flag: UInt32) -> Bool { steps & flag != 0 }
}

/// One header or body change a milter asked for at end-of-message.
enum Edit: Sendable {
    case changeHeader(index: UInt32, name: String, value: String)
    case addHeader(name: String, value: String)
    case insertHeader(index: UInt32, name: String, value: String)
    case quarantine(reason: String)
    case other(command: UInt8)
}

/// The milter's final answer for one message.
enum Verdict: String, Sendable {
    case accept, `continue`, tempfail, reject, discard, replyCode
}

/// What came back for one message.
struct MessageOutcome {
    var verdict: Verdict
    var edits: [Edit] = []
    var replacedBody: [UInt8]? = nil
    var replacedBodyBytes = 0
    var replyText: String? = nil
}

/// A protocol violation by the milter: the message is counted as an error.
struct ProtocolError: Error, CustomStringConvertible {
    let description: String
}

/// Bytes of a message that do not change from one message to the next, encoded once per run.
struct PreparedMessage: Sendable {
    let template: MessageTemplate
    let sender: String
    let recipient: String
    /// Every body chunk packet, back to back (shared, read-only).
    let bodyPackets: [UInt8]

    init(template: MessageTemplate, sender: String, recipient: String) {
        self.template = template
        self.sender = sender
        self.recipient = recipient
        var packets: [UInt8] = []
        packets.reserveCapacity(template.body.count + (template.body.count / Wire.chunkSize + 1) * 5)
        var offset = 0
        while offset < template.body.count {
            let end = min(offset + Wire.chunkSize, template.body.count)
            Wire.append(Wire.body, template.body[offset..<end], to: &packets)
            offset = end
        }
        bodyPackets = packets
    }
}

/// One milter connection, as an MTA (Postfix) drives it: option negotiation, connect, then
/// messages (MAIL, RCPT, headers, EOH, body, EOB) honouring every step the milter asked to skip
/// and every step it said it would not answer. Used by one thread.
final class MilterSession {
    let connection: Connection
    private(set) var negotiated = Negotiated(version: 0, actions: 0, steps: 0)
    /// Keep the replaced body (to save the result) or only count it.
    var keepBody = false
    private var out: [UInt8] = []

    /// `mtaLikeWrites`: Nagle on and one send(2) per packet, the way Postfix writes to a milter.
    init(endpoint: Endpoint, mtaLikeWrites: Bool = false) throws {
        connection = try Connection.connect(to: endpoint, noDelay: !mtaLikeWrites)
        connection.writesPacketByPacket = mtaLikeWrites
    }

    /// SMFIC_OPTNEG: offer version 6, every action and every protocol step; check the answer.
    func negotiate() throws {
        var payload: [UInt8] = []
        Wire.appendUInt32(Wire.version, to: &payload)
        Wire.appendUInt32(Wire.allActions, to: &payload)
        Wire.appendUInt32(Wire.allProtocol, to: &payload)
        Wire.append(Wire.optionNegotiation, payload, to: &out)
        try flush()
        guard let reply = try connection.readPacket() else { throw ProtocolError(description: "milter closed the connection during negotiation") }
        guard reply.command == Wire.optionNegotiation else {
            throw ProtocolError(description: "negotiation reply is '\(printable(reply.command))', not 'O'")
        }
        guard let version = Wire.readUInt32(reply.payload, at: 0), let actions = Wire.readUInt32(reply.payload, at: 4),
              let steps = Wire.readUInt32(reply.payload, at: 8) else {
            throw ProtocolError(description: "negotiation reply too short (\(reply.payload.count) bytes)")
        }
        guard version >= 2, version <= Wire.version else { throw ProtocolError(description: "milter speaks version \(version)") }
        guard actions & ~Wire.allActions == 0 else { throw ProtocolError(description: "milter asks for unknown actions \(actions)") }
        guard steps & ~Wire.allProtocol == 0 else { throw ProtocolError(description: "milter asks for unoffered protocol flags \(steps)") }
        negotiated = Negotiated(version: version, actions: actions, steps: steps)
    }

    /// SMFIC_CONNECT (and HELO) for a client at `address`.
    /// Returns false when the milter ended the connection's mail there (reject, accept, ...).
    func connect(clientAddress: String, hostname: String) throws -> Bool {
        if !negotiated.has(Wire.noConnect) {
            var payload = Wire.cStrings([hostname])
            payload.append(UInt8(ascii: "4"))
            payload.append(0x30)
            payload.append(0x39)  // port 12345
            payload.append(contentsOf: Wire.cStrings([clientAddress]))
            Wire.append(Wire.macro, [Wire.connect] + Wire.cStrings(["j", "mta.milter-load.test", "{daemon_name}", "milter-load"]), to: &out)
            Wire.append(Wire.connect, payload, to: &out)
            if !negotiated.has(Wire.noReplyConnect), try step() != nil { return false }
        }
        if !negotiated.has(Wire.noHelo) {
            Wire.append(Wire.helo, Wire.cStrings([hostname]), to: &out)
            if !negotiated.has(Wire.noReplyHelo), try step() != nil { return false }
        }
        return true
    }

    /// Sends one message and reads the milter's answer.
    func send(_ message: PreparedMessage, queueID: String) throws -> MessageOutcome {
        let n = negotiated
        if !n.has(Wire.noMail) {
            Wire.append(Wire.macro, [Wire.mail] + Wire.cStrings(["i", queueID]), to: &out)
            Wire.append(Wire.mail, Wire.cStrings(["<\(message.sender)>"]), to: &out)
            if !n.has(Wire.noReplyMail), let early = try step() { return early }
        }
        if !n.has(Wire.noRcpt) {
            Wire.append(Wire.rcpt, Wire.cStrings(["<\(message.recipient)>"]), to: &out)
            if !n.has(Wire.noReplyRcpt), let early = try step() { return early }
        }
        if !n.has(Wire.noData) {
            Wire.append(Wire.data, [], to: &out)
            if !n.has(Wire.noReplyData), let early = try step() { return early }
        }
        if !n.has(Wire.noHeaders) {
            let lead = n.has(Wire.headerLeadingSpace) ? " " : ""
            for field in message.template.fields {
                Wire.append(Wire.header, Wire.cStrings([field.name, lead + field.value]), to: &out)
                if !n.has(Wire.noReplyHeader), let early = try step() { return early }
            }
        }
        if !n.has(Wire.noEOH) {
            Wire.append(Wire.endOfHeaders, [], to: &out)
            if !n.has(Wire.noReplyEOH), let early = try step() { return early }
        }
        if !n.has(Wire.noBody) && !message.bodyPackets.isEmpty {
            if n.has(Wire.noReplyBody) {
                try flush()
                try connection.write(message.bodyPackets)
            } else {
                var offset = 0
                let packets = message.bodyPackets
                while offset < packets.count {
                    let length = Int(Wire.readUInt32(packets[...], at: offset) ?? 1)
                    out.append(contentsOf: packets[offset..<(offset + 4 + length)])
                    offset += 4 + length
                    if let early = try step() {
                        if early.verdict == .continue { break }  // SMFIR_SKIP: no more body
                        return early
                    }
                }
            }
        }
        Wire.append(Wire.macro, [Wire.endOfBody] + Wire.cStrings(["i", queueID]), to: &out)
        Wire.append(Wire.endOfBody, [], to: &out)
        try flush()
        return try readEndOfMessage()
    }

    /// SMFIC_QUIT; the milter closes its side.
    func quit() {
        Wire.append(Wire.quit, [], to: &out)
        try? flush()
    }

    private func flush() throws {
        guard !out.isEmpty else { return }
        try connection.write(out)
        out.removeAll(keepingCapacity: true)
    }

    /// Sends what is pending and reads the reply to a step that has one: nil to go on, or the
    /// message's outcome when the milter ended it early. SMFIR_SKIP is reported as `.continue`.
    private func step() throws -> MessageOutcome? {
        try flush()
        while true {
            guard let reply = try connection.readPacket() else { throw ProtocolError(description: "milter closed the connection") }
            switch reply.command {
            case Wire.continue: return nil
            case Wire.progress: continue
            case Wire.skip:
                guard negotiated.has(Wire.skipAllowed) else { throw ProtocolError(description: "SMFIR_SKIP without SMFIP_SKIP") }
                return MessageOutcome(verdict: .continue)
            case Wire.accept: return MessageOutcome(verdict: .accept)
            case Wire.tempfail: return MessageOutcome(verdict: .tempfail)
            case Wire.reject: return MessageOutcome(verdict: .reject)
            case Wire.discard: return MessageOutcome(verdict: .discard)
            case Wire.replyCode:
                return MessageOutcome(verdict: .replyCode, replyText: try replyCodeText(reply.payload))
            default:
                throw ProtocolError(description: "reply '\(printable(reply.command))' is not allowed before end-of-message")
            }
        }
    }

    /// Modification replies, then the final verdict.
    private func readEndOfMessage() throws -> MessageOutcome {
        var outcome = MessageOutcome(verdict: .continue)
        let actions = negotiated.actions
        while true {
            guard let reply = try connection.readPacket() else { throw ProtocolError(description: "milter closed the connection at end-of-message") }
            let p = reply.payload
            switch reply.command {
            case Wire.accept: outcome.verdict = .accept; return outcome
            case Wire.continue: outcome.verdict = .continue; return outcome
            case Wire.tempfail: outcome.verdict = .tempfail; return outcome
            case Wire.reject: outcome.verdict = .reject; return outcome
            case Wire.discard: outcome.verdict = .discard; return outcome
            case Wire.replyCode:
                outcome.verdict = .replyCode
                outcome.replyText = try replyCodeText(p)
                return outcome
            case Wire.progress:
                continue
            case Wire.addHeader:
                try require(actions, 0x1, "SMFIR_ADDHEADER")
                let (name, value) = try nameValue(p, what: "SMFIR_ADDHEADER")
                outcome.edits.append(.addHeader(name: name, value: value))
            case Wire.insertHeader, Wire.changeHeader:
                let isInsert = reply.command == Wire.insertHeader
                try require(actions, isInsert ? 0x1 : 0x10, isInsert ? "SMFIR_INSHEADER" : "SMFIR_CHGHEADER")
                guard let index = Wire.readUInt32(p, at: 0) else { throw ProtocolError(description: "header change without index") }
                let (name, value) = try nameValue(p.dropFirst(4), what: isInsert ? "SMFIR_INSHEADER" : "SMFIR_CHGHEADER")
                outcome.edits.append(isInsert ? .insertHeader(index: index, name: name, value: value)
                                              : .changeHeader(index: index, name: name, value: value))
            case Wire.replaceBody:
                try require(actions, 0x2, "SMFIR_REPLBODY")
                if keepBody {
                    if outcome.replacedBody == nil { outcome.replacedBody = [] }
                    outcome.replacedBody?.append(contentsOf: p)
                }
                outcome.replacedBodyBytes += p.count
            case Wire.quarantine:
                try require(actions, 0x20, "SMFIR_QUARANTINE")
                guard let parts = Wire.splitCStrings(p), parts.count == 1 else { throw ProtocolError(description: "malformed SMFIR_QUARANTINE") }
                outcome.edits.append(.quarantine(reason: String(decoding: parts[0], as: UTF8.self)))
            case Wire.addRcpt, Wire.delRcpt, Wire.addRcptPar, Wire.changeFrom:
                let flag: UInt32 = switch reply.command {
                    case Wire.addRcpt: 0x4
                    case Wire.delRcpt: 0x8
                    case Wire.addRcptPar: 0x80
                    default: 0x40
                }
                try require(actions, flag, "envelope change '\(printable(reply.command))'")
                guard Wire.splitCStrings(p) != nil else { throw ProtocolError(description: "malformed envelope change") }
                outcome.edits.append(.other(command: reply.command))
            default:
                throw ProtocolError(description: "unknown or misplaced reply '\(printable(reply.command))' at end-of-message")
            }
        }
    }

    private func require(_ actions: UInt32, _ flag: UInt32, _ what: String) throws {
        guard actions & flag != 0 else { throw ProtocolError(description: "\(what) without having negotiated the action") }
    }
}

private func nameValue(_ payload: ArraySlice<UInt8>, what: String) throws -> (String, String) {
    guard let parts = Wire.splitCStrings(payload), parts.count == 2 else {
        throw ProtocolError(description: "malformed \(what): not two NUL-terminated strings")
    }
    let name = parts[0]
    guard !name.isEmpty, !name.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: ":") }) else {
        throw ProtocolError(description: "malformed \(what): bad field name")
    }
    return (String(decoding: name, as: UTF8.self), String(decoding: parts[1], as: UTF8.self))
}

private func replyCodeText(_ payload: ArraySlice<UInt8>) throws -> String {
    guard let parts = Wire.splitCStrings(payload), parts.count == 1 else { throw ProtocolError(description: "malformed SMFIR_REPLYCODE") }
    let text = String(decoding: parts[0], as: UTF8.self)
    let code = text.prefix(3)
    guard code.count == 3, code.allSatisfy(\.isNumber), code.first == "4" || code.first == "5" else {
        throw ProtocolError(description: "SMFIR_REPLYCODE without a 4xx/5xx code: \(text.prefix(40))")
    }
    return text
}

func printable(_ byte: UInt8) -> String {
    (0x21...0x7E).contains(byte) ? String(UnicodeScalar(byte)) : "0x" + String(byte, radix: 16)
}
