// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import MIME

/// `BodyFile.base64Lines` (the body of an opaque signature made in a scratch file) gives the
/// bytes `SMIMEWriter.opaque` gives for the same SignedData in memory: base64 lines of 76
/// characters, each ended by CRLF, whatever the piece size and however the file ends.
@Suite struct BodyFileBase64Tests {
    @Test(arguments: [1, 56, 57, 58, 1000, 57 * 300 + 13])
    func base64ViewEqualsTheWholeEncoding(size: Int) throws {
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let file = try BodyFile.scratch(in: "/tmp") { fd in
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }
        #expect(file.size == size)
        let expected = Base64Lines.encode(bytes) + [0x0D, 0x0A]
        let view = try file.base64Lines()
        #expect(try view.readAll() == expected)
        for piece in [1, 75, 76, 77, 4096, 1 << 20] {
            var out: [UInt8] = []
            try view.forEachPiece(pieceSize: piece) { out += $0 }
            #expect(out == expected, "piece \(piece)")
        }
    }
}
