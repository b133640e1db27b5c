// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

/// Checks that nobody but the MTA's group can reach or replace a unix milter socket.
///
/// Connecting to a unix socket needs write permission on the socket file, so `SocketMode`
/// with o+w lets every local user have mail signed. A directory on the way that others may
/// write to (without the sticky bit, as /tmp has) lets them rename or remove the socket and
/// put their own in its place: the MTA would then hand them its mail. Group-writable
/// directories are allowed: the group is the administrator's choice (often the MTA's own).
public enum UnixSocketCheck {
    /// Problems with the directories leading to `socketPath` (each directory that exists,
    /// from the socket's own up to /); empty when none.
    public static func directoryProblems(socketPath: String) -> [String] {
        var problems: [String] = []
        var directory = parent(of: socketPath)
        while true {
            var info = stat()
            if stat(directory, &info) == 0, info.st_mode & S_IWOTH != 0, info.st_mode & S_ISVTX == 0 {
                problems.append("""
                    \(directory) is writable by every local user (mode \(octal(info.st_mode & 0o7777)), no sticky bit): \
                    anyone could replace the milter socket \(socketPath) with their own and receive the MTA's mail; \
                    run chmod o-w \(directory), or put the socket in a directory only root and the milter user can write
                    """)
            }
            if directory == "/" { break }
            directory = parent(of: directory)
        }
        return problems
    }

    /// A problem with the socket file itself once created (not a socket, or writable by
    /// others), or nil.
    static func socketProblem(path: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return "\(path): \(String(cString: strerror(errno)))" }
        guard info.st_mode & S_IFMT == S_IFSOCK else { return "\(path) is not a socket" }
        if info.st_mode & S_IWOTH != 0 {
            return "the milter socket \(path) is writable by every local user (mode \(octal(info.st_mode & 0o777))); it is refused"
        }
        return nil
    }

    /// "mode 0660, owner smime-milter:postfix" for the log.
    static func describe(path: String) -> String {
        var info = stat()
        guard lstat(path, &info) == 0 else { return "not found" }
        let user = getpwuid(info.st_uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? String(info.st_uid)
        let group = getgrgid(info.st_gid).flatMap { $0.pointee.gr_name.map { String(cString: $0) } } ?? String(info.st_gid)
        let groupNote = info.st_mode & 0o020 != 0 ? "; group \(group) may connect" : ""
        return "mode \(octal(info.st_mode & 0o777)), owner \(user):\(group)\(groupNote)"
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    private static func octal(_ mode: mode_t) -> String {
        "0" + String(mode, radix: 8)
    }
}
