// SPDX-License-Identifier: Apache-2.0
// Test helper: writes to a recipient certificate store as fast as it can, printing the number
// of committed writes after each one, until it is killed (the kill -9 test in RecipientStoreTests).
// Usage: recipient-store-stress STORE-PATH COUNT [FIRST] (FIRST: the first write's number, default 0)
import Foundation
import Policy
import RecipientStoreSQLite

let arguments = CommandLine.arguments
guard (3...4).contains(arguments.count), let count = Int(arguments[2]),
      let first = arguments.count == 4 ? Int(arguments[3]) : 0 else {
    FileHandle.standardError.write(Data("usage: recipient-store-stress STORE-PATH COUNT [FIRST]\n".utf8))
    exit(2)
}
do {
    let store = try SQLiteRecipientStore(path: arguments[1])
    for index in first..<(first + count) {
        let time = Date(timeIntervalSince1970: 1_800_000_000 + Double(index))
        try store.upsert(StoredRecipientCertificate(
            address: "user\(index % 40)@stress.example", fingerprint: String(format: "%064x", index),
            certificateDER: [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 1_200),
            intermediatesDER: [[UInt8](repeating: 7, count: 900)], subject: "CN=user\(index % 40)", issuer: "CN=CA",
            serialHex: String(index, radix: 16), notBefore: time, notAfter: time.addingTimeInterval(86_400 * 365),
            source: .harvested, addedAt: time))
        try store.logHarvestDecision(HarvestLogEntry(time: time, address: "user\(index % 40)@stress.example",
                                                     fingerprint: String(format: "%064x", index), kept: true, reason: "kept"))
        FileHandle.standardOutput.write(Data("\(index - first + 1)\n".utf8))
    }
} catch {
    FileHandle.standardError.write(Data("recipient-store-stress: \(error)\n".utf8))
    exit(1)
}
