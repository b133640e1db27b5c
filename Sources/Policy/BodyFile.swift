#if canImport(Glibc)
import Glibc
#endif

/// A message body held in a file (the milter's spool file) rather than in memory: a read-only
/// view by file descriptor. Immutable; reads use `pread`, so it can be shared between threads.
public final class BodyFile: @unchecked Sendable, Equatable {
    /// A read of the file failed.
    public struct ReadError: Error, CustomStringConvertible {
        public let description: String
    }

    private let fd: Int32
    /// The body's length in bytes.
    public let size: Int

    /// Takes ownership of `fd` (closed on deinit); the body is its first `size` bytes.
    public init(fd: Int32, size: Int) {
        self.fd = fd
        self.size = max(size, 0)
    }

    deinit { close(fd) }

    public static func == (a: BodyFile, b: BodyFile) -> Bool { a === b }

    /// Calls `body` with consecutive pieces of at most `pieceSize` bytes, in order.
    public func forEachPiece(pieceSize: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(pieceSize, 4096), alignment: 16)
        defer { buffer.deallocate() }
        var offset = 0
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

    /// The whole body in memory.
    public func readAll() throws -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(size)
        try forEachPiece { out.append(contentsOf: $0) }
        return out
    }
}
