// SPDX-License-Identifier: Apache-2.0
import Foundation
import Milter
import Policy
#if canImport(Glibc)
import Glibc
#endif

/// Drops root privileges to `UserID` (user[:group]) after the socket is open and the keys are
/// read, as OpenDKIM does.
enum Privileges {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func drop(to spec: UserSpec, server: MilterServer) throws {
        let pw = UInt32(spec.user).flatMap { getpwuid($0) } ?? getpwnam(spec.user)
        guard let pw, let name = pw.pointee.pw_name else {
            throw Failure(description: "UserID: no such user \"\(spec.user)\"")
        }
        let userName = String(cString: name)
        var gid = pw.pointee.pw_gid
        if let group = spec.group {
            guard let gr = UInt32(group).flatMap({ getgrgid($0) }) ?? getgrnam(group) else {
                throw Failure(description: "UserID: no such group \"\(group)\"")
            }
            gid = gr.pointee.gr_gid
        }
        let uid = pw.pointee.pw_uid
        if getuid() == uid { return }
        guard geteuid() == 0 else {
            throw Failure(description: "UserID \(spec) needs the milter to be started as root")
        }
        try server.chownSocket(uid: uid, gid: gid)
        guard initgroups(userName, gid) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw Failure(description: "cannot switch to \(spec): \(String(cString: strerror(errno)))")
        }
    }
}
