// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Policy
import SMIME

/// `identity sync`: make CertificateDir follow the directory (IdentitySource).
struct SyncIdentityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Enrol an identity for each address that appears in IdentitySource; for each that disappears, stop signing, revoke, and (KeyRetentionDays) destroy its key.")

    @Flag(help: "List what would be done, change nothing.")
    var dryRun = false

    @Flag(help: "Do not tell the running milter to reload (the caller does).")
    var noReload = false

    @OptionGroup var options: ConfigOption

    func run() throws {
        var lifecycle = try Lifecycle.open(configPath: options.config)
        lifecycle.reloads = !noReload
        throw ExitCode(lifecycle.sync(dryRun: dryRun))
    }
}

extension Lifecycle {
    static let directorySource = "directory"

    /// One synchronisation; returns the exit status (the worst of its steps).
    func sync(dryRun: Bool, now: Date = Date()) -> Int32 {
        let settings = configuration.lifecycle
        guard let url = settings.identitySource else {
            complain("IdentitySource is not set")
            return 2
        }
        let wanted: Set<String>
        do {
            wanted = try DirectorySource.configured(url: url, settings: settings).addresses()
        } catch let failure as DirectorySource.Failure where failure.description.hasPrefix("cannot read IdentitySourceSecretFile") {
            complain(failure.description)
            return 2
        } catch {
            complain("identity sync: the directory could not be read, nothing is changed: \(error)")
            return 75
        }
        let states = state.read()
        let installer = IdentityInstaller(directory: certificateDir)
        let managed = Set(states.filter { $0.value.source == Self.directorySource && $0.value.removed == nil }.keys)
        let arriving = wanted.filter { !installer.exists($0) }.sorted()
        let leaving = managed.subtracting(wanted).filter { installer.exists($0) }.sorted()
        var destroying: [String] = []
        if let days = settings.keyRetentionDays {
            let limit = now.addingTimeInterval(-TimeInterval(days) * 86_400)
            destroying = states.filter { ($0.value.removed.map { $0 <= limit } ?? false) && $0.value.keysDestroyed == nil
                && !wanted.contains($0.key) }.keys.sorted()
        }
        if wanted.isEmpty && !leaving.isEmpty {
            complain("identity sync: the directory gave no address at all; refusing to remove \(leaving.count) identities (check IdentitySource)")
            return 1
        }
        if dryRun {
            for a in arriving { say("would enrol \(a)") }
            for a in leaving { say("would stop signing for \(a), archive its identity and ask the CA to revoke its certificate") }
            for a in destroying { say("would destroy the archived keys of \(a)") }
            if arriving.isEmpty && leaving.isEmpty && destroying.isEmpty { say("nothing to do: \(wanted.count) addresses in the directory") }
            return 0
        }
        var worst: Int32 = 0
        for address in arriving {
            worst = max(worst, enrol(address: address, kind: .new, source: Self.directorySource, now: now).exitCode)
        }
        for address in leaving { worst = max(worst, remove(address: address, installer: installer, now: now)) }
        for address in destroying { worst = max(worst, destroyKeys(address: address, now: now)) }
        return worst
    }

    /// Stops signing for `address` at once (archive, reload), then asks the CA to revoke.
    func remove(address: String, installer: IdentityInstaller, now: Date) -> Int32 {
        let lock: LifecycleLock
        do { lock = try LifecycleLock(configuration: configuration) } catch {
            complain("\(error)")
            return 75
        }
        defer { lock.release() }
        let certificate = FileManager.default.contents(atPath: "\(certificateDir)/\(address).pem").map { [UInt8]($0) }
        do {
            try installer.archiveCurrent(address: address, now: now)
        } catch {
            complain("\(address): cannot archive its identity, it still signs: \(error)")
            return 1
        }
        let reload = reloads ? MilterReload.signal(configuration: configuration) : "the milter was not told to reload (--no-reload)"
        say("\(address) left the directory: its identity is archived and no longer signs; \(reload)")
        var message = "removed: left the directory"
        var code: Int32 = 0
        if let certificate {
            do {
                try enroller.revoke(certificatePEM: certificate, key: nil, reason: .cessationOfOperation)
                say("\(address): the CA revoked its certificate (cessationOfOperation)")
                message += "; certificate revoked"
            } catch {
                complain("\(address): revocation at \(enroller.description) failed: \(error)")
                message += "; revocation failed: \(error)"
                code = (error as? EnrolmentError)?.temporary == true ? 75 : 1
            }
        }
        state.record(address: address, result: .init(time: now, ok: code == 0, message: message, backend: enroller.description,
                                                     source: Self.directorySource, removed: now))
        return code
    }

    /// Deletes the archived private keys of `address` (KeyRetentionDays after it left).
    func destroyKeys(address: String, now: Date) -> Int32 {
        let archive = IdentityInstaller(directory: certificateDir).archive
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: archive)) ?? [])
            .filter { $0.hasPrefix(address + ".") && $0.hasSuffix(".key") }
        for file in files {
            do { try FileManager.default.removeItem(atPath: "\(archive)/\(file)") } catch {
                complain("\(address): cannot destroy \(archive)/\(file): \(error)")
                return 1
            }
        }
        say("\(address): destroyed \(files.count) archived key(s) (KeyRetentionDays \(configuration.lifecycle.keyRetentionDays ?? 0))")
        var record = state.read()[address] ?? .init(time: now, ok: true, message: "", backend: enroller.description)
        record.keysDestroyed = now
        state.record(address: address, result: record)
        return 0
    }
}
