// SPDX-License-Identifier: Apache-2.0
import MIME

/// The From field as a reader sees it, checked for the shapes that let a valid signature vouch
/// for something other than what is displayed ("Composition Kills", USENIX Security 2020).
///
/// Stricter than RFC 8550 §3 ("From or Sender") on purpose: webmail shows From, so From is the
/// only field a signature can vouch for. A signature counts only with exactly one From field whose
/// every mailbox the signer's certificate names (checked after verification), a display name that
/// shows no other address, and no group syntax or encoded-word in place of an address.
struct FromField: Sendable, Equatable {
    /// Every mailbox of every From field, normalised.
    var addresses: [String]
    /// Why no signature can vouch for this From, in plain words; nil when it can.
    var problem: String?

    /// The address the verifier compares the signer with: the mailbox of a From field that has
    /// exactly one; nil otherwise (then the policy checks the signer against every mailbox).
    var single: String? { addresses.count == 1 ? addresses[0] : nil }

    /// The reason a display name shows another address; also the AR comment.
    static let displayNameReason = "display name shows another address"

    static func of(_ fields: [HeaderField]) -> FromField {
        let froms = fields.all(named: "From")
        guard !froms.isEmpty else {
            return FromField(addresses: [], problem: "the message has no From address to compare the signer with")
        }
        var mailboxes: [Mailbox] = []
        var problem: String?
        for field in froms {
            guard let parsed = try? AddressList.mailboxes(in: field.value) else {
                problem = problem ?? "the From field is malformed (it cannot be parsed as addresses)"
                continue
            }
            mailboxes += parsed
        }
        let addresses = mailboxes.map(\.normalisedAddress)
        if froms.count > 1 {
            return FromField(addresses: addresses, problem: "the message has \(froms.count) From fields")
        }
        if let problem { return FromField(addresses: addresses, problem: problem) }
        if mailboxes.isEmpty {
            return FromField(addresses: [], problem: "the From field is malformed (no address)")
        }
        if mailboxes.contains(where: { $0.group != nil }) {
            return FromField(addresses: addresses, problem: "the From field is malformed (group syntax)")
        }
        if mailboxes.contains(where: { containsEncodedWordStart($0.localPart) || containsEncodedWordStart($0.domain) }) {
            return FromField(addresses: addresses, problem: "the From field is malformed (an encoded word in place of the address)")
        }
        for mailbox in mailboxes {
            let own = mailbox.normalisedAddress
            if let name = mailbox.displayName, addressesShown(in: name).contains(where: { $0 != own }) {
                return FromField(addresses: addresses, problem: displayNameReason)
            }
        }
        return FromField(addresses: addresses, problem: nil)
    }

    /// Every `local@domain` a text shows (decoded display name), lower-cased: a run of address
    /// characters on each side of an `@`, the domain with a dot. Full-width and other look-alike
    /// `@` signs count too: a reader takes them for one.
    static func addressesShown(in text: String) -> [String] {
        // Most display names show no address at all: skip the per-character work for them.
        guard text.unicodeScalars.contains(where: { $0 == "@" || $0 == "\u{FF20}" || $0 == "\u{FE6B}" }) else { return [] }
        let ats: Set<Character> = ["@", "＠", "﹫"]
        let stops: Set<Character> = [" ", "\t", "<", ">", "(", ")", "[", "]", ",", ";", ":", "\"", "'", "\\"]
        let chars = Array(text)
        var out: [String] = []
        for (i, c) in chars.enumerated() where ats.contains(c) {
            var start = i
            while start > 0, !stops.contains(chars[start - 1]), !ats.contains(chars[start - 1]) { start -= 1 }
            var end = i + 1
            while end < chars.count, !stops.contains(chars[end]), !ats.contains(chars[end]) { end += 1 }
            let local = String(chars[start..<i])
            let domain = String(chars[(i + 1)..<end]).trimmingCharacters(in: ["."])
            guard !local.isEmpty, domain.contains(".") else { continue }
            out.append((local + "@" + domain).lowercased())
        }
        return out
    }
}

/// Whether `text` holds `=?`, the start of an encoded word (a byte scan: this runs per message).
private func containsEncodedWordStart(_ text: String) -> Bool {
    var previous: UInt8 = 0
    for byte in text.utf8 {
        if previous == UInt8(ascii: "="), byte == UInt8(ascii: "?") { return true }
        previous = byte
    }
    return false
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
