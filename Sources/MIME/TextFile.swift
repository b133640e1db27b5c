// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads small text files (configuration and tables) with clear, bounded failure.
public enum TextFile {
    /// A file that could not be read: its path and the system's (or our) explanation, e.g.
    /// "No such file or directory". The configuration layer words the message around them.
    public struct ReadError: Error, Sendable, Equatable {
        public let path: String
        public let problem: String
    }

    /// Table files larger than this are refused rather than read into memory.
    public static let maximumSize = 64 << 20

    /// Reads the whole file at `path` as UTF-8; throws `ReadError`.
    public static func readText(path: String, maximumSize: Int = TextFile.maximumSize) throws -> String {
        func failure(_ problem: String) -> ReadError { ReadError(path: path, problem: problem) }
        guard !path.isEmpty, !path.contains("\0") else { throw failure("not a valid path") }
        // O_NONBLOCK: opening a FIFO must not hang start-up; it is refused below as not a regular file.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { throw failure(systemError(errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(systemError(errno)) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw failure("not a regular file") }
        guard Int(info.st_size) <= maximumSize else { throw failure("larger than \(maximumSize) bytes") }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure(systemError(errno))
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            // The file may grow between fstat and read: keep the bound anyway.
            guard bytes.count <= maximumSize else { throw failure("larger than \(maximumSize) bytes") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw failure("not valid UTF-8 text") }
        return text
    }

    /// The system's text for an errno value.
    public static func systemError(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
