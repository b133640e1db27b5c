// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import MIME

/// Where and from what size a message body is kept in a file instead of in memory.
public struct SpoolSettings: Sendable, Equatable {
    /// Bodies larger than this many bytes go to a spool file.
    public var threshold: Int
    /// The private directory (mode 0700, created when missing) that holds the spool files.
    public var directory: String

    public init(threshold: Int, directory: String) {
        self.threshold = threshold
        self.directory = directory
    }
}

/// One message body in a spool file, so that collecting a large body neither holds it in
/// memory nor grows an array by doubling. The file lives in a private directory and is removed
/// when the message ends or aborts, or the connection closes (`deinit`).
final class BodySpool {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let path: String
    private let fd: Int32
    /// Bytes written so far.
    private(set) var size = 0

    /// Makes a new, empty spool file (mode 0600) in `directory`, creating the directory with
    /// mode 0700 when missing and refusing one that others may read or write.
    init(directory: String) throws {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw Failure(description: "cannot create spool directory \(directory): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard lstat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw Failure(description: "spool directory \(directory) is not a directory")
        }
        guard info.st_uid == geteuid(), info.st_mode & 0o077 == 0 else {
            throw Failure(description: "spool directory \(directory) must be owned by the milter's user with mode 0700")
        }
        var template = Array((directory + "/body.XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw Failure(description: "cannot create a spool file in \(directory): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        self.path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Appends `bytes` to the file.
    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "cannot write spool file \(path): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        size += bytes.count
    }

    /// A read-only view of the body for the policy (its own descriptor, so it outlives this
    /// object if it must; the file itself goes when this object does).
    func bodyFile() throws -> BodyFile {
        let copy = dup(fd)
        guard copy >= 0 else {
            throw Failure(description: "cannot reopen spool file \(path): \(String(cString: strerror(errno)))")
        }
        return BodyFile(fd: copy, size: size)
    }
}
