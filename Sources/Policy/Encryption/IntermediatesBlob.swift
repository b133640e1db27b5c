// SPDX-License-Identifier: Apache-2.0
/// How every certificate store keeps a recipient's intermediate certificates in one column:
/// each DER prefixed by its length (4 bytes, big-endian). One format for all stores, so that
/// `store copy` moves the column between them unchanged.
public enum IntermediatesBlob {
    public static func encode(_ items: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(items.reduce(0) { $0 + 4 + $1.count })
        for item in items {
            let n = UInt32(item.count)
            out += [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
            out += item
        }
        return out
    }

    /// The certificates back; a length running past the end is a damaged store.
    public static func decode(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var items: [[UInt8]] = []
        var index = 0
        while index < bytes.count {
            guard index + 4 <= bytes.count else { throw RecipientStoreError(.corrupt, "damaged intermediates in the store") }
            let n = Int(bytes[index]) << 24 | Int(bytes[index + 1]) << 16 | Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            index += 4
            guard n <= bytes.count - index else { throw RecipientStoreError(.corrupt, "damaged intermediates in the store") }
            items.append(Array(bytes[index..<(index + n)]))
            index += n
        }
        return items
    }
}
