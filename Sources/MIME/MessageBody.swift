// SPDX-License-Identifier: Apache-2.0
/// A message body: in memory, or in a spool file that stays on disk (a large body is never held
/// whole). The one body type of the milter: the collected body of a message and the body that
/// replaces it (`MessageEdit.replaceBody`) are both one.
public enum MessageBody: Sendable, Equatable {
    /// The bytes, CRLF line ends.
    case memory([UInt8])
    /// A body in a file, read piece by piece (`BodyFile`).
    case file(BodyFile)

    /// No body.
    public static let empty = MessageBody.memory([])

    /// The whole body in memory. Reading a spooled body can fail; the caller says what then
    /// happens (the policy's failure rules), so nothing reads it behind its back.
    public func bytes() throws -> [UInt8] {
        switch self {
        case let .memory(bytes): return bytes
        case let .file(file): return try file.readAll()
        }
    }

    /// The spool file, when the body is one.
    public var file: BodyFile? {
        if case let .file(file) = self { return file }
        return nil
    }

    /// Calls `body` with consecutive pieces of the body, in order, each of at most `pieceSize`
    /// bytes when in memory (see `BodyFile.forEachPiece` for a file). An empty body gives none.
    public func forEachPiece(pieceSize: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        switch self {
        case let .memory(bytes):
            try bytes.withUnsafeBytes { all in
                var offset = 0
                while offset < all.count {
                    let n = min(pieceSize, all.count - offset)
                    try body(UnsafeRawBufferPointer(rebasing: all[offset..<(offset + n)]))
                    offset += n
                }
            }
        case let .file(file):
            try file.forEachPiece(pieceSize: pieceSize, body)
        }
    }
}
