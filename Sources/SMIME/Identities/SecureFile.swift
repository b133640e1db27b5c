// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Reads identity files, checking type, size and (for secrets) permissions first.
enum SecureFile {
    /// Identity files are small; anything larger is refused (bounded work).
    static let maximumSize = 1 << 20

    /// A file's bytes and its permission bits.
    struct Contents {
        var bytes: [UInt8]
        var mode: mode_t

        /// Whether group or others may read, write or execute the file.
        var isAccessibleByOthers: Bool { mode & 0o077 != 0 }
    }

    /// Opens `path`, checks it with `fstat` on the open descriptor (no race between the
    /// check and the read), and reads it. With `secret`, a file open to group/others is
    /// refused before a single byte is read.
    static func read(_ path: String, secret: Bool) throws(IdentityProblem) -> Contents {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        guard descriptor >= 0 else {
            throw IdentityProblem(file: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw IdentityProblem(file: path, reason: "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw IdentityProblem(file: path, reason: "not a regular file")
        }
        let mode = info.st_mode & 0o7777
        if secret && mode & 0o077 != 0 {
            throw permissionProblem(path, mode: mode)
        }
        guard info.st_size <= maximumSize else {
            throw IdentityProblem(file: path, reason: "file is larger than \(maximumSize) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var total = 0
        while total < bytes.count {
            let count = bytes.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Foundation.read(descriptor, base + total, raw.count - total)
            }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                throw IdentityProblem(file: path, reason: "cannot read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            total += count
        }
        bytes.removeSubrange(total...)
        return Contents(bytes: bytes, mode: mode)
    }

    /// The problem for a key file that group or others can access.
    static func permissionProblem(_ path: String, mode: mode_t) -> IdentityProblem {
        IdentityProblem(file: path, reason: "key file is accessible by group or others (mode "
            + String(format: "%04o", UInt32(mode)) + "); run chmod 600 on it")
    }
}
