// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads small text files (configuration and tables) with clear, bounded failure.
enum TextFile {
    /// Table files larger than this are refused rather than read into memory.
    static let maximumSize = 64 << 20

    /// Reads the whole file at `path` as UTF-8.
    ///
    /// Throws a `ValueProblem` whose reason names the file and the system's explanation
    /// (e.g. `cannot read "/etc/x": No such file or directory`).
    static func readText(path: String, maximumSize: Int = TextFile.maximumSize) throws -> String {
        guard !path.isEmpty, !path.contains("\0") else {
            throw ValueProblem("cannot read \(quoted(path)): not a valid path")
        }
        // O_NONBLOCK: opening a FIFO must not hang start-up; it is refused below as not a regular file.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            throw ValueProblem("cannot read \(quoted(path)): \(systemError(errno))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw ValueProblem("cannot read \(quoted(path)): \(systemError(errno))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ValueProblem("cannot read \(quoted(path)): not a regular file")
        }
        guard Int(info.st_size) <= maximumSize else {
            throw ValueProblem("cannot read \(quoted(path)): larger than \(maximumSize) bytes")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ValueProblem("cannot read \(quoted(path)): \(systemError(errno))")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            // The file may grow between fstat and read: keep the bound anyway.
            guard bytes.count <= maximumSize else {
                throw ValueProblem("cannot read \(quoted(path)): larger than \(maximumSize) bytes")
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ValueProblem("cannot read \(quoted(path)): not valid UTF-8 text")
        }
        return text
    }

    /// The system's text for an errno value.
    static func systemError(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
