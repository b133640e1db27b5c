// SPDX-License-Identifier: Apache-2.0
import ArgumentParser

/// `smime-milter`: S/MIME signing milter for Postfix and Sendmail.
@main
struct SMIMEMilterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smime-milter",
        abstract: "S/MIME signing and verifying milter for Postfix and Sendmail.",
        version: SMIMEMilterVersion.string,
        subcommands: [
            RunCommand.self,
            SignCommand.self,
            DecryptCommand.self,
            VerifyCommand.self,
            DiagnoseCommand.self,
            CheckConfigCommand.self,
            CertsCommand.self,
            IdentityCommand.self,
            StoreCommand.self,
        ],
        defaultSubcommand: RunCommand.self
    )
}

enum SMIMEMilterVersion {
    static let string = "0.1.0"
}

/// Options shared by the commands that read the configuration.
struct ConfigOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "The configuration file.")
    var config: String = ConfigOption.defaultPath

    /// The configuration file when none is named.
    static let defaultPath = "/etc/smime-milter/smime-milter.conf"
}
