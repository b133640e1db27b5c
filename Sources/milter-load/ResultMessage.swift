// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

/// The message as the MTA would deliver it after applying the milter's edits, the way Postfix
/// and Sendmail apply them: in order; SMFIR_CHGHEADER changes (or with an empty value deletes)
/// the index-th field of that name, SMFIR_INSHEADER inserts at a position among all fields,
/// SMFIR_ADDHEADER appends, SMFIR_REPLBODY replaces the body.
enum ResultMessage {
    static func render(_ message: PreparedMessage, outcome: MessageOutcome, leadingSpace: Bool) -> [UInt8] {
        // Values as the milter sees them (with the leading space under SMFIP_HDR_LEADSPC).
        let lead = leadingSpace ? " " : ""
        var fields = message.template.fields.map { (name: $0.name, value: lead + $0.value) }
        for edit in outcome.edits {
            switch edit {
            case let .addHeader(name, value):
                fields.append((name, value))
            case let .insertHeader(index, name, value):
                fields.insert((name, value), at: min(Int(index), fields.count))
            case let .changeHeader(index, name, value):
                var seen: UInt32 = 0
                var position: Int?
                for (i, f) in fields.enumerated() where f.name.lowercased() == name.lowercased() {
                    seen += 1
                    if seen == max(index, 1) { position = i; break }
                }
                if let position {
                    if value.isEmpty { fields.remove(at: position) } else { fields[position].value = value }
                } else if !value.isEmpty {
                    fields.append((name, value))
                }
            case .quarantine, .other:
                break
            }
        }
        var out: [UInt8] = []
        for f in fields {
            out.append(contentsOf: Array(f.name.utf8))
            out.append(UInt8(ascii: ":"))
            // Without SMFIP_HDR_LEADSPC the MTA puts one space after the colon itself.
            if !leadingSpace { out.append(0x20) }
            for b in f.value.utf8 {
                if b == 0x0D { continue }
                if b == 0x0A { out.append(0x0D) }
                out.append(b)
            }
            out.append(contentsOf: [0x0D, 0x0A])
        }
        out.append(contentsOf: [0x0D, 0x0A])
        let body = outcome.replacedBody ?? message.template.body
        // Replacement bodies may use bare LF; deliver CRLF.
        var previous: UInt8 = 0
        for b in body {
            if b == 0x0A && previous != 0x0D { out.append(0x0D) }
            out.append(b)
            previous = b
        }
        return out
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        guard let file = fopen(path, "wb") else { throw SocketError("cannot write \(path)") }
        defer { fclose(file) }
        guard fwrite(bytes, 1, bytes.count, file) == bytes.count else { throw SocketError("write \(path)") }
    }
}
