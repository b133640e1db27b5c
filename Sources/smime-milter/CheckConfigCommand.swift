// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Policy
import SMIME

/// `smime-milter check-config`: validate the configuration and list the identities.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration, list identities; exit non-zero on any error.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let setup: LoadedSetup
        do {
            setup = try LoadedSetup.load(configPath: options.config, openingStore: false)
        } catch {
            print("error: \(error)")
            throw ExitCode(1)
        }
        print("configuration \(options.config): OK")
        print(setup.configuration.describe())
        let now = Date()
        print("identities (\(setup.identities.identities.count)):")
        var tokenProblems: [String] = []
        for identity in setup.identities.identities {
            let days = Int((identity.notAfter.timeIntervalSince(now) / 86_400).rounded(.down))
            print("  \(identity.name): \(identity.addresses.joined(separator: ", "))")
            print("    key \(identity.keyDescription), expires in \(days) days (\(iso(identity.notAfter)))")
            print("    chain: \(([identity.subject] + identity.chainSubjects).joined(separator: " <- "))")
            if let token = identity.tokenKey {
                if let problem = token.probe() {
                    print("    token \(token.uri): does not answer: \(problem)")
                    tokenProblems.append("identity \(identity.name): token \(token.uri) does not answer")
                } else {
                    print("    token \(token.uri): answers")
                }
            }
        }
        let encryption = RecipientCerts.checkConfiguration(setup.configuration)
        encryption.lines.forEach { print($0) }
        for problem in tokenProblems { print("error: \(problem)") }
        for problem in setup.problems + encryption.problems { print("error: \(problem)") }
        if !setup.problems.isEmpty || !tokenProblems.isEmpty || !encryption.problems.isEmpty { throw ExitCode(1) }
    }

    private func iso(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}
