import ArgumentParser
import Foundation
import Logging
import Milter
import Policy
#if canImport(Glibc)
import Glibc
#endif

/// `smime-milter run`: serve the milter protocol in the foreground.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the milter in the foreground (the default command).")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let setup: LoadedSetup
        do {
            setup = try LoadedSetup.load(configPath: options.config)
        } catch {
            FileHandle.standardError.write(Data("smime-milter: \(error)\n".utf8))
            throw ExitCode(78)  // EX_CONFIG
        }
        let logger = Log.bootstrap(level: Logger.Level(configured: setup.configuration.logLevel))
        for problem in setup.problems { logger.warning("\(problem)") }
        for identity in setup.identities.identities {
            let days = Int(identity.notAfter.timeIntervalSinceNow / 86_400)
            logger.info("identity \(identity.name): \(identity.addresses.joined(separator: ", ")) \(identity.keyDescription), expires in \(days) days")
        }
        let delegate = PolicyDelegate(policy: setup.policy, logger: logger)
        let server = MilterServer(
            socket: setup.configuration.socket, socketMode: setup.configuration.socketMode, delegate: delegate)
        do {
            try server.open()
            if let user = setup.configuration.userID {
                try Privileges.drop(to: user, server: server)
            }
            if let pidFile = setup.configuration.pidFile {
                try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
            }
        } catch {
            logger.error("\(error)")
            throw ExitCode(71)  // EX_OSERR
        }
        logger.notice("smime-milter \(SMIMEMilterVersion.string) listening on \(setup.configuration.socket), mode \(setup.configuration.mode)")
        let rc = server.run()
        if let pidFile = setup.configuration.pidFile { unlink(pidFile) }
        logger.notice("smime-milter stopped")
        if rc != 0 { throw ExitCode(rc) }
    }
}

/// Connects the milter binding to the policy and the log.
struct PolicyDelegate: MilterDelegate {
    let policy: SigningPolicy
    let logger: Logger

    func evaluate(_ message: MessageContext) -> PolicyOutcome {
        policy.evaluate(message)
    }

    func finished(_ message: MessageContext, outcome: PolicyOutcome, milliseconds: Double) {
        let line = MessageLogLine.format(message, outcome: outcome, milliseconds: milliseconds)
        switch outcome.decision {
        case .error: logger.error("\(line)")
        case .unauthorised: logger.warning("\(line)")
        default: logger.info("\(line)")
        }
    }

    func log(_ level: MilterLogLevel, _ text: String) {
        switch level {
        case .error: logger.error("\(text)")
        case .warning: logger.warning("\(text)")
        case .notice: logger.notice("\(text)")
        case .info: logger.info("\(text)")
        case .debug: logger.debug("\(text)")
        }
    }
}
