// SPDX-License-Identifier: Apache-2.0
extension Configuration {
    /// The effective settings as configuration text, one `Key value` line per key in the order of
    /// `ConfigurationKey.all`; unset optional keys appear as comments. Used by `check-config`.
    ///
    /// The text parses back to an equal configuration (table files are read again); secret
    /// values, if a key is marked secret, are left out.
    public func describe() -> String {
        let width = (ConfigurationKey.all.map(\.name.count).max() ?? 0) + 2
        var lines = ["# effective configuration from \(sourceFile.isEmpty ? "(built-in defaults)" : sourceFile)"]
        for key in ConfigurationKey.all {
            let padded = key.name.padding(toLength: width, withPad: " ", startingAt: 0)
            let commented = key.name.padding(toLength: width - 1, withPad: " ", startingAt: 0)
            if let value = key.show(self) {
                lines.append(key.isSecret ? "#" + commented + "(set, not shown)" : padded + value + summary(for: key.name))
            } else {
                lines.append("#" + commented + "(not set)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A trailing comment with the size of a loaded table, so check-config shows it was read.
    private func summary(for key: String) -> String {
        switch key {
        case "SigningTable": return signingTable.map { "  # \($0.rules.count) rules" } ?? ""
        case "SenderMap": return senderMap.map { "  # \($0.entries.count) entries" } ?? ""
        case "RequireSignature": return requireSignature.map { "  # \($0.count) entries" } ?? ""
        case "InternalHosts":
            return internalHosts.sourceFile == nil ? "" : "  # \(internalHosts.entries.count) entries"
        case "AllowedPeers":
            guard case let .networks(list) = process.allowedPeers, list.sourceFile != nil else { return "" }
            return "  # \(list.entries.count) entries"
        default: return ""
        }
    }
}
