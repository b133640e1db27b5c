// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Policy
import SMIME

/// `smime-milter identity`: make, enrol, install and renew signing identities (docs/lifecycle.md).
struct IdentityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identity",
        abstract: "Enrol and renew signing identities at a CA (EnrollCommand or CMPServer).",
        subcommands: [NewIdentityCommand.self, RenewIdentityCommand.self, SyncIdentityCommand.self])
}

/// `identity new ADDRESS`: a new key, a request, enrolment, check, installation, reload.
struct NewIdentityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Make a key and a request for ADDRESS, enrol it, install ADDRESS.pem/ADDRESS.key in CertificateDir and reload the milter.")

    @Argument(help: "The mailbox address (local@domain).")
    var address: String

    @Option(help: "Enrol this existing private key (PEM file) instead of making a new one.")
    var key: String?

    @Flag(help: "Do not tell the running milter to reload (the caller does; the packaged timer's service).")
    var noReload = false

    @OptionGroup var options: ConfigOption

    func run() throws {
        var lifecycle = try Lifecycle.open(configPath: options.config)
        lifecycle.reloads = !noReload
        let outcome = lifecycle.enrol(address: address.lowercased(), kind: .new, keyFile: key)
        throw ExitCode(outcome.exitCode)
    }
}

/// `identity renew ADDRESS` / `identity renew --due`.
struct RenewIdentityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "renew",
        abstract: "Renew one identity, or with --due every identity named by its address that expires within RenewBeforeDays.")

    @Argument(help: "The address of the identity to renew.")
    var address: String?

    @Flag(help: "Renew every identity (named ADDRESS in CertificateDir) that expires within RenewBeforeDays.")
    var due = false

    @Flag(help: "Keep the current key (a new key is made by default).")
    var keepKey = false

    @Option(help: "Enrol this existing private key (PEM file) instead of making a new one (with ADDRESS only).")
    var key: String?

    @Flag(help: "Do not tell the running milter to reload (the caller does; the packaged timer's service).")
    var noReload = false

    @OptionGroup var options: ConfigOption

    func validate() throws {
        guard (address == nil) == due else { throw ValidationError("give either an ADDRESS or --due") }
        guard key == nil || (!due && !keepKey) else { throw ValidationError("--key goes with one ADDRESS, without --keep-key") }
    }

    func run() throws {
        // The packaged daily timer runs --due on every installation: without a CA there is
        // nothing it can do, and that is no failure (ExpiryWarnDays still warns).
        if due, let configuration = try? ConfigurationParser.load(path: options.config),
           configuration.lifecycle.enrollCommand == nil, configuration.lifecycle.cmpHost == nil {
            print("smime-milter: no CA is configured (EnrollCommand, CMPServer): nothing is renewed")
            return
        }
        var lifecycle = try Lifecycle.open(configPath: options.config)
        lifecycle.reloads = !noReload
        let addresses: [String]
        if due {
            addresses = lifecycle.dueAddresses()
            if addresses.isEmpty { lifecycle.say("nothing to renew: no identity expires within \(lifecycle.configuration.lifecycle.renewBeforeDays) days") }
        } else {
            addresses = [address!.lowercased()]
        }
        var worst: Int32 = 0
        for address in addresses {
            let outcome = lifecycle.enrol(address: address, kind: .renewal(keepKey: keepKey), keyFile: key)
            worst = max(worst, outcome.exitCode)
        }
        throw ExitCode(worst)
    }
}
