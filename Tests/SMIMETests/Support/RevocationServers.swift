// SPDX-License-Identifier: Apache-2.0
import Foundation
import Glibc

/// The revocation test PKI (`Tests/fixtures/make_revocation_pki.py`) with its servers running on
/// loopback ports chosen here: `openssl ocsp` as the responder (and a second one signing with a
/// key the CA did not authorise), `python3 -m http.server` serving the CRLs, and a socket that
/// accepts connections and never answers (a responder that is down). Made once per test run;
/// the servers are stopped at exit.
struct RevocationServers: Sendable {
    let directory: String
    let ocspPort: Int
    let rogueOCSPPort: Int
    let crlPort: Int
    let downPort: Int

    var trustPEM: String { directory + "/trust.pem" }

    /// leaf + intermediate + root of `name` (good, revoked, unknown, down, stale, rogue), PEM.
    func chainPEM(_ name: String) throws -> [UInt8] {
        let identity = try String(contentsOfFile: directory + "/certs/\(name).pem", encoding: .utf8)
        let certificates = identity.components(separatedBy: "-----BEGIN PRIVATE KEY-----")[0]
        let root = try String(contentsOfFile: directory + "/root.pem", encoding: .utf8)
        return Array((certificates + root).utf8)
    }

    static let shared: Result<RevocationServers, any Error> = Result { try start() }
    static func get() throws -> RevocationServers { try shared.get() }

    private static func start() throws -> RevocationServers {
        let directory = FileManager.default.temporaryDirectory.path + "/smime-tests-revocation-" + UUID().uuidString
        let ports = (0..<4).map { _ in freePort() }
        let script = TestPKI.repositoryRoot + "/Tests/fixtures/make_revocation_pki.py"
        let made = try Subprocess.run("python3", [script, directory] + ports.map(String.init))
        guard made.status == 0 else { throw TestFailure("make_revocation_pki.py failed: \(made.combined)") }
        let servers = RevocationServers(directory: directory, ocspPort: ports[0], rogueOCSPPort: ports[1],
                                        crlPort: ports[2], downPort: ports[3])
        let ocsp = directory + "/ocsp"
        try launch("openssl", ["ocsp", "-index", ocsp + "/index.txt", "-port", "\(ports[0])", "-rsigner",
                               ocsp + "/responder.pem", "-rkey", ocsp + "/responder.key", "-CA",
                               directory + "/intermediate.pem", "-nmin", "60"], log: directory + "/ocsp.log")
        try launch("openssl", ["ocsp", "-index", ocsp + "/index.txt", "-port", "\(ports[1])", "-rsigner",
                               ocsp + "/rogue.pem", "-rkey", ocsp + "/rogue.key", "-CA",
                               directory + "/intermediate.pem", "-nmin", "60"], log: directory + "/rogue.log")
        try launch("python3", ["-m", "http.server", "--bind", "127.0.0.1", "--directory", directory + "/crl", "\(ports[2])"])
        try launch("python3", ["-c", "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                               + "s.bind(('127.0.0.1',\(ports[3])))\ns.listen(64)\ntime.sleep(3600)"])
        // `openssl ocsp` hangs after a connection that sends nothing: wait for its log line instead.
        for log in ["/ocsp.log", "/rogue.log"] { try waitForLine("waiting for OCSP client connections", in: directory + log) }
        for port in ports[2...] { try waitForListener(port) }
        revocationCleanup.set(directory)
        atexit {
            for process in revocationProcesses.get() where process.isRunning { process.terminate() }
            if let path = revocationCleanup.get() { try? FileManager.default.removeItem(atPath: path) }
        }
        return servers
    }

    static func launch(_ program: String, _ arguments: [String], log: String? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        process.standardInput = FileHandle.nullDevice
        if let log {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        revocationProcesses.update { $0.append(process) }
    }

    /// A port nothing listens on now (the kernel's choice for port 0).
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits (at most 20 s) until `file` holds `text`.
    static func waitForLine(_ text: String, in file: String) throws {
        for _ in 0..<200 {
            if let contents = try? String(contentsOfFile: file, encoding: .utf8), contents.contains(text) { return }
            usleep(100_000)
        }
        throw TestFailure("\(file): no \"\(text)\"")
    }

    /// Waits (at most 20 s) until something accepts connections on 127.0.0.1:port.
    static func waitForListener(_ port: Int) throws {
        for _ in 0..<200 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let ok = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            } == 0
            close(fd)
            if ok { return }
            usleep(100_000)
        }
        throw TestFailure("nothing listens on 127.0.0.1:\(port)")
    }
}

let revocationProcesses = LockedValue<[Process]>([])
let revocationCleanup = LockedValue<String?>(nil)
