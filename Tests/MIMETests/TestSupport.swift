// SPDX-License-Identifier: Apache-2.0
import Foundation
@testable import MIME

/// The bytes of `s` with every `\n` turned into CRLF (test messages are written with `\n`).
func crlf(_ s: String) -> [UInt8] { LineEnds.toCRLF(Array(s.utf8)) }

/// UTF-8 bytes of `s`, unchanged.
func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Bytes as text for readable failure messages (ISO-8859-1 so every byte shows).
func text<C: Collection>(_ b: C) -> String where C.Element == UInt8 { HeaderText.latin1String(b) }

/// Splits a whole message given with `\n` line ends.
func splitMessage(_ s: String) throws -> (fields: [HeaderField], body: [UInt8]) {
    try MessageParser.split(Array(s.utf8))
}

/// The lines of CRLF bytes (without their CRLF).
func crlfLines(_ b: [UInt8]) -> [[UInt8]] {
    var lines = [[UInt8]]()
    var current = [UInt8]()
    var i = 0
    while i < b.count {
        if b[i] == 13 && i + 1 < b.count && b[i + 1] == 10 {
            lines.append(current); current = []; i += 2
        } else {
            current.append(b[i]); i += 1
        }
    }
    lines.append(current)
    return lines
}

/// The repository root, found from this file's path.
let repositoryRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
/// The shared folder next to the repository.
let sharedFolder: URL = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared")

/// A deterministic pseudo-random generator (SplitMix64) so property tests are reproducible.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
