// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Policy
import SMIME
#if canImport(Glibc)
import Glibc
#endif

/// One run of `smime-milter identity`: the configuration, the CA (`Enroller`), the trust
/// anchors issued certificates must chain to, the lock that lets one enrolment run at a time.
struct Lifecycle {
    let configuration: Configuration
    let certificateDir: String
    let enroller: any Enroller
    let trustAnchors: TrustStore
    let state: LifecycleState
    /// Whether to tell the running milter to reload after an installation.
    var reloads = true

    enum Kind {
        case new
        case renewal(keepKey: Bool)
        var word: String { if case .new = self { "enrolment" } else { "renewal" } }
    }

    /// The result of one enrolment: exit 0 done, 1 refused or wrong certificate, 75 (EX_TEMPFAIL)
    /// when the CA could not be reached (the systemd service retries later).
    struct Outcome { var exitCode: Int32 }

    static func open(configPath: String) throws -> Lifecycle {
        let configuration: Configuration
        do { configuration = try ConfigurationParser.load(path: configPath) } catch {
            fail("\(error)", code: 2)
        }
        guard let dir = configuration.certificateDir else { fail("CertificateDir is not set", code: 2) }
        guard let anchors = configuration.trustAnchors else {
            fail("TrustAnchors is not set: issued certificates are checked against it before use", code: 2)
        }
        let trust: TrustStore
        do { trust = try TrustStore(anchors: [anchors]) } catch { fail("TrustAnchors: \(error)", code: 2) }
        let settings = configuration.lifecycle
        let enroller: any Enroller
        if let host = settings.cmpHost {
            var secret: [UInt8]?
            if let file = settings.cmpSecretFile {
                guard let data = FileManager.default.contents(atPath: file) else { fail("cannot read CMPSecretFile \(file)", code: 2) }
                var bytes = [UInt8](data)
                while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
                secret = bytes
            }
            guard secret != nil || settings.cmpClientCertificate != nil else {
                fail("CMPServer needs CMPSecretFile (with CMPReference) or CMPClientCertificate and CMPClientKey", code: 2)
            }
            enroller = CMPEnroller(settings: .init(
                host: host, port: settings.cmpPort, path: settings.cmpPath, reference: settings.cmpReference,
                secret: secret, clientCertificate: settings.cmpClientCertificate, clientKey: settings.cmpClientKey,
                trustAnchors: settings.cmpTrustAnchors, timeout: TimeInterval(settings.enrollTimeout)))
        } else if let command = settings.enrollCommand {
            enroller = CommandEnroller(enrolCommand: command, revokeCommand: settings.revokeCommand,
                                       timeout: TimeInterval(settings.enrollTimeout))
        } else {
            fail("no CA is configured: set EnrollCommand or CMPServer", code: 2)
        }
        return Lifecycle(configuration: configuration, certificateDir: dir, enroller: enroller, trustAnchors: trust,
                         state: LifecycleState(directory: settings.stateDirectory))
    }

    static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("smime-milter: \(message)\n".utf8))
        Foundation.exit(code)
    }

    func say(_ message: String) { print("smime-milter: \(message)") }
    func complain(_ message: String) { FileHandle.standardError.write(Data("smime-milter: \(message)\n".utf8)) }

    /// Addresses of identities named by their address that expire within RenewBeforeDays.
    func dueAddresses(now: Date = Date()) -> [String] {
        let store = IdentityStore.load(directory: certificateDir, now: now, tokens: configuration.tokens)
        let limit = now.addingTimeInterval(TimeInterval(configuration.lifecycle.renewBeforeDays) * 86_400)
        // Per address the identity valid longest counts: one renewed already is not due again.
        var latest: [String: Date] = [:]
        for identity in store.identities + store.expired where CertificateRequest.isPlainMailbox(identity.name) {
            latest[identity.name] = max(latest[identity.name] ?? .distantPast, identity.notAfter)
        }
        return latest.filter { $0.value <= limit }.keys.sorted()
    }

    /// Makes (or keeps) the key, enrols, checks, installs and reloads; logs and records the result.
    func enrol(address: String, kind: Kind, keyFile: String? = nil, source: String? = nil, now: Date = Date()) -> Outcome {
        guard CertificateRequest.isPlainMailbox(address) else {
            complain("\(address) is not a plain mailbox address (local@domain)")
            return Outcome(exitCode: 2)
        }
        let lock: LifecycleLock
        do { lock = try LifecycleLock(configuration: configuration) } catch {
            complain("\(error)")
            return Outcome(exitCode: 75)
        }
        defer { lock.release() }
        let installer = IdentityInstaller(directory: certificateDir)
        // Wrong commands are no enrolment: reported, not recorded.
        if case .new = kind, installer.exists(address) {
            complain("\(address) already has an identity in \(certificateDir): use identity renew")
            return Outcome(exitCode: 1)
        }
        if case .renewal = kind, !installer.exists(address) {
            complain("\(address) has no identity in \(certificateDir) to renew: use identity new")
            return Outcome(exitCode: 1)
        }
        do {
            let key: NewKey
            if let keyFile {
                guard let data = FileManager.default.contents(atPath: keyFile) else {
                    throw EnrolmentError("cannot read the key file \(keyFile)", temporary: false)
                }
                key = try NewKey(pem: [UInt8](data))
            } else if case .renewal(keepKey: true) = kind {
                let current = try installer.currentKeyPEM(address)
                let text = String(decoding: current, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                key = text.lowercased().hasPrefix("pkcs11:")
                    ? try NewKey(tokenURI: try PKCS11URI(text), settings: configuration.tokens)
                    : try NewKey(pem: current)
            } else if let token = configuration.lifecycle.newKeysOn {
                key = try TokenKeyGenerator.generate(configuration.lifecycle.keyType, on: token, for: address,
                                                     settings: configuration.tokens)
            } else {
                key = try NewKey(generating: configuration.lifecycle.keyType)
            }
            let request = try CertificateRequest(address: address, key: key)
            let answer = try enroller.enrol(request: request, key: key)
            // Checked at the time of the answer: a CA starts validity when it issues.
            let answered = Date()
            let chain = try IssuedCertificate.check(answer: answer, key: key, address: address, trustAnchors: trustAnchors, now: answered)
            let installed = try installer.install(address: address, chain: chain, keyPEM: try key.keyFileContents(),
                                                  tokens: configuration.tokens, now: answered)
            let reload = reloads ? MilterReload.signal(configuration: configuration)
                : "the milter was not told to reload (--no-reload)"
            say("\(address): \(kind.word) at \(enroller.description) done: serial \(installed.serialHex), valid until \(ISO8601DateFormatter().string(from: installed.notAfter)); \(reload)")
            state.record(address: address, result: .init(time: now, ok: true, message: "\(kind.word) done, serial \(installed.serialHex)",
                                                         backend: enroller.description, source: source), enrolment: true)
            return Outcome(exitCode: 0)
        } catch {
            let temporary = (error as? EnrolmentError)?.temporary ?? false
            complain("\(address): \(kind.word) at \(enroller.description) failed, the current identity (if any) is kept: \(error)")
            state.record(address: address, result: .init(time: now, ok: false, message: "\(kind.word) failed: \(error)",
                                                         backend: enroller.description, source: source), enrolment: true)
            return Outcome(exitCode: temporary ? 75 : 1)
        }
    }
}
