// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

/// A message body held in a file (the milter's spool file) rather than in memory: a read-only
/// view by file descriptor, optionally converted (`convertingText`) and framed by bytes in
/// memory before and after it (`framed`). Immutable; reads use `pread`, so it can be shared
/// between threads. `MessageBody.file` holds one.
public final class BodyFile: @unchecked Sendable, Equatable {
    /// A read of the file failed.
    public struct ReadError: Error, CustomStringConvertible {
        public let description: String

        public init(description: String) { self.description = description }
    }

    private let fd: Int32
    /// The length in bytes of the body in the file (before any conversion).
    public let size: Int
    /// How the file's bytes become the pieces handed out.
    private enum Transform: Sendable {
        /// As they are.
        case none
        /// The file's text body converted to its 7-bit signed form.
        case text(StreamingTextConverter)
        /// Base64 in lines of 76 characters, CRLF after each (an opaque signature's body).
        case base64
        /// The signable entity of a multipart, ranges of the file among bytes in memory.
        case plan(StreamedEntityPlan)
    }
    private let transform: Transform
    /// Bytes handed out before the file's pieces, and after them.
    private let head: [UInt8]
    private let tail: [UInt8]

    /// Takes ownership of `fd` (closed on deinit); the body is its first `size` bytes.
    public convenience init(fd: Int32, size: Int) {
        self.init(fd: fd, size: max(size, 0), transform: .none, head: [], tail: [])
    }

    private init(fd: Int32, size: Int, transform: Transform, head: [UInt8], tail: [UInt8]) {
        self.fd = fd
        self.size = size
        self.transform = transform
        self.head = head
        self.tail = tail
    }

    /// A second descriptor of the same file, for a view that outlives this one.
    private func duplicateDescriptor() throws -> Int32 {
        let copy = dup(fd)
        guard copy >= 0 else { throw ReadError(description: "cannot reopen the spooled body: " + String(cString: strerror(errno))) }
        return copy
    }

    /// A view of the same file whose pieces are the body converted by `converter` (after its
    /// pass 1), a run of whole lines at a time: a large 8-bit text body is signed and written
    /// back without being held, converted, in memory.
    public func convertingText(with converter: StreamingTextConverter) throws -> BodyFile {
        BodyFile(fd: try duplicateDescriptor(), size: size, transform: .text(converter), head: head, tail: tail)
    }

    /// A view of the same file whose pieces are the entity `plan` makes of it (a large
    /// multipart converted to 7-bit with its large leaves read from the file).
    public func rendering(_ plan: StreamedEntityPlan) throws -> BodyFile {
        BodyFile(fd: try duplicateDescriptor(), size: size, transform: .plan(plan), head: head, tail: tail)
    }

    /// A view of the same file whose pieces are its bytes in base64, lines of 76 characters each
    /// ended by CRLF (what `SMIMEWriter.opaque` writes for a SignedData in memory).
    public func base64Lines() throws -> BodyFile {
        BodyFile(fd: try duplicateDescriptor(), size: size, transform: .base64, head: head, tail: tail)
    }

    /// A new file in `directory`, filled by `write` (given its descriptor, open for reading and
    /// writing), as a body. The file has no name once made (mode 0600, unlinked at once), so it
    /// goes when its last view does, also when the process dies.
    public static func scratch(in directory: String, _ write: (Int32) throws -> Void) throws -> BodyFile {
        var template = Array((directory + "/scratch.XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw ReadError(description: "cannot create a scratch file in \(directory): " + String(cString: strerror(errno)))
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        let file = BodyFile(fd: fd, size: 0)   // closes fd when thrown away
        try write(fd)
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw ReadError(description: "cannot read the scratch file: " + String(cString: strerror(errno)))
        }
        return BodyFile(fd: try file.duplicateDescriptor(), size: Int(info.st_size))
    }

    /// A view of the same file with `head` before its pieces and `tail` after them (the
    /// frame of a multipart/signed body around a signed entity that stays on disk).
    public func framed(head: [UInt8], tail: [UInt8]) throws -> BodyFile {
        BodyFile(fd: try duplicateDescriptor(), size: size, transform: transform,
                 head: head + self.head, tail: self.tail + tail)
    }

    deinit { close(fd) }

    public static func == (a: BodyFile, b: BodyFile) -> Bool { a === b }

    /// Calls `body` with consecutive pieces of the body, in order: the head, then pieces of at
    /// most `pieceSize` bytes of the file (for a converting view, the converted form of runs of
    /// whole lines), then the tail.
    public func forEachPiece(pieceSize: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        if !head.isEmpty { try head.withUnsafeBytes { try body($0) } }
        try forEachBodyPiece(pieceSize: pieceSize, body)
        if !tail.isEmpty { try tail.withUnsafeBytes { try body($0) } }
    }

    private func forEachBodyPiece(pieceSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let converter: StreamingTextConverter
        switch transform {
        case .none: return try forEachFilePiece(pieceSize: pieceSize, body)
        case .base64: return try forEachBase64Piece(pieceSize: pieceSize, body)
        case let .plan(plan):
            return try plan.render(pieceSize: pieceSize, read: { range, size, each in
                try forEachFilePiece(in: range, pieceSize: size, each)
            }, emit: body)
        case let .text(textConverter): converter = textConverter
        }
        var runs = LineRuns()
        func emit(_ run: UnsafeRawBufferPointer) throws {
            try converter.convert(run).withUnsafeBytes { try body($0) }
        }
        try forEachFilePiece(pieceSize: pieceSize) { try runs.feed($0, emit) }
        try runs.finish(emit)
        // Pass 1 turned away a body with a line too long to carry, so this cannot happen; if it
        // did, the output would not be what was signed.
        guard !runs.cutALine else { throw ReadError(description: "the spooled body changed between passes") }
    }

    /// Whole base64 lines: 57 bytes of the file make one line of 76 characters; the bytes after
    /// the last whole line of a piece are carried into the next.
    private func forEachBase64Piece(pieceSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var carry: [UInt8] = []
        func emit(_ bytes: UnsafeRawBufferPointer) throws {
            var lines = Base64Lines.encode(bytes)
            lines += Byte.crlf
            try lines.withUnsafeBytes { try body($0) }
        }
        try forEachFilePiece(pieceSize: max(pieceSize / 76 * 57, 57)) { piece in
            let input: [UInt8] = carry + piece
            let whole = input.count / 57 * 57
            if whole > 0 { try input.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0[0..<whole])) } }
            carry = Array(input[whole...])
        }
        if !carry.isEmpty { try carry.withUnsafeBytes { try emit($0) } }
    }

    private func forEachFilePiece(pieceSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try forEachFilePiece(in: 0..<size, pieceSize: pieceSize, body)
    }

    private func forEachFilePiece(in range: Range<Int>, pieceSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(pieceSize, 4096), alignment: 16)
        defer { buffer.deallocate() }
        let size = min(range.upperBound, self.size)
        var offset = range.lowerBound
        while offset < size {
            let n = pread(fd, buffer.baseAddress, min(buffer.count, size - offset), off_t(offset))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw ReadError(description: "cannot read the spooled body: "
                                + (n == 0 ? "the file is shorter than recorded" : String(cString: strerror(errno))))
            }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            offset += n
        }
    }

    /// True for the spool file itself: no conversion and no frame, so offsets are file offsets
    /// (what `read(at:into:)` and `bytes(in:)` need).
    public var isPlain: Bool {
        if case .none = transform { return head.isEmpty && tail.isEmpty }
        return false
    }

    /// Reads file bytes from `offset` (at most `buffer.count`, never past `size`) into `buffer`:
    /// the count read, 0 at the end. Only for a plain view (`isPlain`): a converted view has no
    /// byte offsets of its own. A streaming consumer (OpenSSL hashing part 1 of a spooled
    /// multipart/signed) reads with this.
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard isPlain else { throw ReadError(description: "a converted view of the spooled body has no byte offsets") }
        guard offset >= 0, offset < size, buffer.count > 0 else { return 0 }
        while true {
            let n = pread(fd, buffer.baseAddress, min(buffer.count, size - offset), off_t(offset))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw ReadError(description: "cannot read the spooled body: "
                                + (n == 0 ? "the file is shorter than recorded" : String(cString: strerror(errno))))
            }
            return n
        }
    }

    /// The bytes of `range` of the file in memory (a plain view only; for a small range, such as
    /// the signature part of a spooled multipart/signed).
    public func bytes(in range: Range<Int>) throws -> [UInt8] {
        guard isPlain else { throw ReadError(description: "a converted view of the spooled body has no byte offsets") }
        var out = [UInt8]()
        out.reserveCapacity(range.count)
        try forEachFilePiece(in: range, pieceSize: min(max(range.count, 4096), 1 << 20)) { out.append(contentsOf: $0) }
        guard out.count == range.count else { throw ReadError(description: "cannot read the spooled body: the file is shorter than recorded") }
        return out
    }

    /// The whole body in memory.
    public func readAll() throws -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(head.count + size + tail.count)
        try forEachPiece { out.append(contentsOf: $0) }
        return out
    }
}
