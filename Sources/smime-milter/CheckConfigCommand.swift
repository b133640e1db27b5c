// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Milter
import Policy
import SMIME

/// `smime-milter check-config [FILE]`: validate the configuration and list the identities.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration, list identities; exit non-zero on any error.",
        discussion: "Every error is reported, each as FILE:LINE: message. The file may be given as --config FILE or, as with opendkim -n, on its own.")

    @OptionGroup var options: ConfigOption

    @Argument(help: "The configuration file (the same as --config FILE).")
    var file: String?

    func validate() throws {
        if let file, options.config != ConfigOption.defaultPath, options.config != file {
            throw ValidationError("give the configuration file once: \(file) or --config \(options.config)")
        }
    }

    func run() throws {
        let path = file ?? options.config
        let review = ConfigurationParser.review(path: path)
        var errors = review.errors.map { $0.description }
        let configuration = review.configuration
        if errors.isEmpty {
            errors += LoadedSetup.socketProblems(configuration, file: path, lines: review.keyLines).map { $0.description }
        }
        guard errors.isEmpty else {
            for error in errors { print("error: \(error)") }
            print("configuration \(path): \(errors.count) error\(errors.count == 1 ? "" : "s")")
            throw ExitCode(1)
        }
        let setup: LoadedSetup
        do {
            setup = try LoadedSetup.load(configPath: path, openingStore: false)
        } catch {
            print("error: \(error)")
            throw ExitCode(1)
        }
        print("configuration \(path): OK")
        for warning in review.warnings { print("warning: \(warning)") }
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
