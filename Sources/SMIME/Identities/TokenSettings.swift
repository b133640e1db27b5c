// SPDX-License-Identifier: Apache-2.0
import Foundation

/// How identities whose key is on a PKCS#11 token are reached (the `PKCS11Module`,
/// `TokenPINFile` and `TokenSessions` keys).
public struct TokenSettings: Sendable, Equatable {
    /// The PKCS#11 module the engine loads; nil: p11-kit's proxy, which offers every module
    /// registered with p11-kit (SoftHSM, OpenSC...).
    public var modulePath: String?
    /// Where the PIN is: a file path, or `credential:NAME` for `$CREDENTIALS_DIRECTORY/NAME`
    /// (a systemd credential). Nil: log in without a PIN (tokens that need none).
    public var pinFile: String?
    /// At most this many signatures are made on the token at once (each needs a session).
    public var sessions: Int

    /// The default: p11-kit's proxy, no PIN, 4 sessions.
    public init(modulePath: String? = nil, pinFile: String? = nil, sessions: Int = 4) {
        self.modulePath = modulePath
        self.pinFile = pinFile
        self.sessions = sessions
    }

    /// p11-kit's proxy module where Debian installs it.
    public static let proxyModuleCandidates = [
        "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so", "/usr/lib/aarch64-linux-gnu/p11-kit-proxy.so",
        "/usr/lib/p11-kit-proxy.so", "/usr/lib64/p11-kit-proxy.so",
    ]

    /// The module path in force.
    public var resolvedModulePath: String {
        if let modulePath { return modulePath }
        return Self.proxyModuleCandidates.first { FileManager.default.fileExists(atPath: $0) }
            ?? Self.proxyModuleCandidates[0]
    }

    /// Reads the PIN: a secret file (not accessible by group or others, regular, small),
    /// trailing CR/LF stripped; refused when empty or holding a NUL. The PIN is never put in
    /// an error message.
    public func readPIN() throws(IdentityProblem) -> [UInt8]? {
        guard let pinFile else { return nil }
        let path = try Self.pinPath(pinFile, environment: ProcessInfo.processInfo.environment)
        var bytes = try SecureFile.read(path, secret: true).bytes
        while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
        if bytes.isEmpty { throw IdentityProblem(file: path, reason: "PIN file is empty") }
        if bytes.contains(0) || bytes.contains(0x0A) || bytes.contains(0x0D) {
            throw IdentityProblem(file: path, reason: "PIN file must hold one line without NUL bytes")
        }
        return bytes
    }

    /// The file a `TokenPINFile` value names: a path, or `credential:NAME` resolved in
    /// `$CREDENTIALS_DIRECTORY` (NAME may not contain a slash).
    public static func pinPath(_ value: String, environment: [String: String]) throws(IdentityProblem) -> String {
        guard value.hasPrefix("credential:") else { return value }
        let name = String(value.dropFirst("credential:".count))
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw IdentityProblem(file: value, reason: "credential name must be a plain file name")
        }
        guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else {
            throw IdentityProblem(file: value, reason: "CREDENTIALS_DIRECTORY is not set "
                                  + "(add LoadCredential= to the systemd unit)")
        }
        return (directory as NSString).appendingPathComponent(name)
    }
}
