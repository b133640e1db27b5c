// SPDX-License-Identifier: Apache-2.0
import Foundation
import Policy
import SMIME
#if canImport(Glibc)
import Glibc
#endif

/// Installs an enrolled identity into CertificateDir as `ADDRESS.pem` (the chain) and
/// `ADDRESS.key` (the key, 0600). The files are written and loaded in a private staging
/// folder first (the loader's own checks: what the milter would accept); then, so that a
/// reload at any instant finds a usable identity for the address, the new identity is put in
/// place as `ADDRESS~next.pem` (chain and key in one 0600 file), the old pair moves to
/// `archive/` (the loader does not look into folders: archived keys never sign, they stay for
/// decrypting old mail), the new pair is renamed into place and the transitional file removed.
struct IdentityInstaller {
    let directory: String

    /// The archive folder for previous keys and certificates.
    var archive: String { directory + "/archive" }

    func exists(_ address: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(directory)/\(address).pem")
    }

    func currentKeyPEM(_ address: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: "\(directory)/\(address).key") else {
            throw EnrolmentError("\(address).key cannot be read (a key on a token or in the .pem cannot be kept: renew with a new key)", temporary: false)
        }
        return [UInt8](data)
    }

    /// Installs and returns the identity as the milter will load it.
    func install(address: String, chain: [UInt8], keyPEM: [UInt8], tokens: TokenSettings, now: Date) throws -> SigningIdentity {
        let staging = try makeStaging()
        defer { try? FileManager.default.removeItem(atPath: staging) }
        try write(chain, to: "\(staging)/\(address).pem", mode: 0o644)
        try write(keyPEM, to: "\(staging)/\(address).key", mode: 0o600)
        let identity: SigningIdentity
        do {
            identity = try IdentityLoader.load(name: address, directory: staging, now: now, tokens: tokens)
        } catch {
            throw EnrolmentError("the issued certificate would not be used: \(error)", temporary: false)
        }
        let next = "\(directory)/\(address)~next.pem"
        try write(chain + keyPEM, to: next, mode: 0o600)
        defer { unlink(next) }
        if exists(address) {
            try archiveCurrent(address: address, now: now)
        }
        try rename("\(staging)/\(address).key", "\(directory)/\(address).key")
        try rename("\(staging)/\(address).pem", "\(directory)/\(address).pem")
        syncDirectory(directory)
        return identity
    }

    /// Moves `ADDRESS.pem`/`ADDRESS.key` into `archive/` as `ADDRESS.SERIAL.pem`/`.key`.
    func archiveCurrent(address: String, now: Date) throws {
        if !FileManager.default.fileExists(atPath: archive) {
            guard mkdir(archive, 0o700) == 0 || errno == EEXIST else {
                throw EnrolmentError("cannot make \(archive): \(String(cString: strerror(errno)))", temporary: false)
            }
            let fd = open(archive, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd >= 0 { adoptOwner(fd: fd); close(fd) }
        }
        let old = try? IdentityLoader.load(name: address, directory: directory, now: now, allowExpired: true)
        var tag = old?.serialHex ?? String(Int(now.timeIntervalSince1970))
        // rename(2) replaces its target: an archived pair of the same tag (a pair that did not
        // load, archived twice in one second; a serial reused by a CA) would lose its key.
        let base = tag
        var suffix = 1
        while ["pem", "key"].contains(where: { FileManager.default.fileExists(atPath: "\(archive)/\(address).\(tag).\($0)") }) {
            suffix += 1
            tag = "\(base)-\(suffix)"
        }
        for ext in ["pem", "key"] where FileManager.default.fileExists(atPath: "\(directory)/\(address).\(ext)") {
            try rename("\(directory)/\(address).\(ext)", "\(archive)/\(address).\(tag).\(ext)")
        }
        syncDirectory(archive)
    }

    private func makeStaging() throws -> String {
        var template = Array("\(directory)/.staging.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw EnrolmentError("cannot write in \(directory): \(String(cString: strerror(errno)))", temporary: false)
        }
        return String(cString: made)
    }

    /// Run as root (an administrator's `identity new`), the files get CertificateDir's owner:
    /// the milter's user must read the key.
    private func adoptOwner(fd: Int32) {
        guard geteuid() == 0 else { return }
        var info = stat()
        if stat(directory, &info) == 0 { _ = fchown(fd, info.st_uid, info.st_gid) }
    }

    private func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw EnrolmentError("cannot write \(path): \(String(cString: strerror(errno)))", temporary: false) }
        defer { close(fd) }
        _ = fchmod(fd, mode)
        adoptOwner(fd: fd)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            throw EnrolmentError("cannot write \(path): \(String(cString: strerror(errno)))", temporary: false)
        }
    }

    private func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else {
            throw EnrolmentError("cannot rename \(from) to \(to): \(String(cString: strerror(errno)))", temporary: false)
        }
    }

    private func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }
}

/// Tells the running milter to reload after an installation: SIGHUP to the process in
/// `PidFile`, else `systemctl reload smime-milter.service` when systemd runs the machine; with
/// neither, nothing is told and the new identity is used from the milter's next reload or start.
enum MilterReload {
    static func signal(configuration: Configuration) -> String {
        if let pidFile = configuration.process.pidFile {
            guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                  let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 else {
                return "PidFile \(pidFile) cannot be read: the milter was not told; reload it (SIGHUP) to use the new identity"
            }
            guard kill(pid, SIGHUP) == 0 else {
                return "the milter (pid \(pid) from \(pidFile)) could not be told to reload: \(String(cString: strerror(errno)))"
            }
            return "the milter (pid \(pid)) was told to reload (SIGHUP)"
        }
        if FileManager.default.fileExists(atPath: "/run/systemd/system"),
           FileManager.default.isExecutableFile(atPath: "/usr/bin/systemctl") {
            if let result = try? BoundedCommand.run(["/usr/bin/systemctl", "reload", "smime-milter.service"], input: [], timeout: 60),
               result.status == 0 {
                return "smime-milter.service was reloaded (systemctl reload)"
            }
            return "systemctl reload smime-milter.service failed: reload the milter to use the new identity"
        }
        return "no PidFile and no systemd: the running milter was not told; it uses the new identity after its next reload (SIGHUP) or start"
    }
}
