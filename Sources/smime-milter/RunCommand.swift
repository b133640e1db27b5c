// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Logging
import MIME
import Milter
import Policy
import SMIME
#if canImport(Glibc)
import Glibc
#endif

/// `smime-milter run`: serve the milter protocol in the foreground.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the milter in the foreground (the default command).")

    @OptionGroup var options: ConfigOption

    func run() throws {
        // Before any other OpenSSL call: worker threads may still be in libcrypto when the
        // process exits, and OpenSSL's atexit clean-up would pull its state from under them.
        OpenSSLProcessState.keepUntilExit()
        // Before any thread exists, so that all inherit it (see MilterServer.run).
        MilterServer.blockSignals()
        let setup: LoadedSetup
        let warnings: [String]
        do {
            (setup, warnings) = try LoadedSetup.loadForServing(configPath: options.config, atStart: true)
        } catch {
            for line in "\(error)".split(separator: "\n") {
                FileHandle.standardError.write(Data("smime-milter: \(line)\n".utf8))
            }
            throw ExitCode(78)  // EX_CONFIG
        }
        let configuration = setup.configuration
        let logger = Log.bootstrap(
            level: Logger.Level(configured: configuration.process.logLevel),
            syslogFacility: configuration.process.syslog ? configuration.process.syslogFacility : nil)
        for problem in setup.problems { logger.warning("\(problem)") }
        for warning in warnings { logger.warning("\(warning)") }
        for identity in setup.identities.identities {
            let days = Int(identity.notAfter.timeIntervalSinceNow / 86_400)
            logger.info("identity \(identity.name): \(identity.addresses.joined(separator: ", ")) \(identity.keyDescription), expires in \(days) days")
        }
        let metrics = configuration.process.metricsListen.map { _ in MilterMetrics() }
        let expiry = ExpiryMonitor(logger: logger, metrics: metrics)
        let delegate = PolicyDelegate(setup: setup, logger: logger, metrics: metrics, expiry: expiry)
        let server = MilterServer(
            socket: setup.configuration.process.socket, socketMode: setup.configuration.process.socketMode,
            allowedPeers: setup.configuration.process.effectiveAllowedPeers,
            timeoutSeconds: setup.configuration.limits.milterTimeout, delegate: delegate)
        do {
            try server.open()
            if let user = setup.configuration.process.userID {
                try Privileges.drop(to: user, server: server)
            }
            if let pidFile = setup.configuration.process.pidFile {
                try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
            }
            if let endpoint = configuration.process.metricsListen, let metrics {
                try MetricsHTTPServer(endpoint: endpoint, metrics: metrics).start()
                logger.notice("metrics at http://\(endpoint)/metrics")
            }
        } catch {
            logger.error("\(error)")
            throw ExitCode(71)  // EX_OSERR
        }
        expiry.check(setup)
        expiry.startDaily { delegate.setup }
        if !configuration.revocation.methods.isEmpty {
            // Our identities' revocation status is found at load: a daily reload checks it again.
            Thread {
                while true {
                    sleep(86_400)
                    delegate.reload(configPath: options.config)
                }
            }.start()
        }
        RefusedPeerMonitor.start(logger: logger)
        logger.notice("smime-milter \(SMIMEMilterVersion.string) (mode \(setup.configuration.mode)) listening on \(server.listeningDescription())")
        let rc = server.run(reload: { delegate.reload(configPath: options.config) })
        if let pidFile = setup.configuration.process.pidFile { unlink(pidFile) }
        logger.notice("smime-milter stopped")
        if rc != 0 { throw ExitCode(rc) }
    }
}

/// Connects the milter binding to the policy and the log, and holds the configuration in
/// force. A reload swaps it whole; a message evaluates against one consistent set.
final class PolicyDelegate: MilterDelegate {
    private let current: Locked<LoadedSetup>
    let logger: Logger
    let metrics: MilterMetrics?
    let expiry: ExpiryMonitor
    /// At most one broken-signature report per sender per hour; kept across reloads.
    let reportLimiter: ReportRateLimiter

    init(setup: LoadedSetup, logger: Logger, metrics: MilterMetrics?, expiry: ExpiryMonitor,
         reportLimiter: ReportRateLimiter = ReportRateLimiter()) {
        self.current = Locked(setup)
        self.logger = logger
        self.metrics = metrics
        self.expiry = expiry
        self.reportLimiter = reportLimiter
    }

    var setup: LoadedSetup { current.withLock { $0 } }

    // Both run at the start of every message on libmilter's threads: take only what is needed
    // under the lock (copying the whole LoadedSetup there lengthened a contended section).
    func currentEvaluator() -> any MessageEvaluator {
        current.withLock { $0.policy }
    }

    func spoolSettings() -> SpoolSettings? {
        current.withLock { SpoolSettings(threshold: $0.configuration.spoolThreshold, directory: $0.configuration.spoolDirectory) }
    }

    func connectionLimit() -> Int? {
        current.withLock { $0.configuration.limits.maxConnections }
    }

    func messageWorkLimit() -> Int? {
        current.withLock { $0.configuration.limits.concurrentMessages }
    }

    /// Re-reads the configuration, identities and tables. A configuration with an error is
    /// refused with a log line and the one in force stays.
    func reload(configPath: String) {
        let old = setup
        // Keys added to a token since the last load are seen only by a fresh token login.
        TokenSettings.reopenTokensOnNextUse()
        let new: LoadedSetup
        let warnings: [String]
        do {
            (new, warnings) = try LoadedSetup.loadForServing(configPath: configPath)
        } catch {
            for line in "\(error)".split(separator: "\n") {
                logger.error("reload refused, keeping the configuration in force: \(line)")
            }
            return
        }
        for problem in new.problems { logger.warning("\(problem)") }
        for warning in warnings { logger.warning("\(warning)") }
        let changed = old.configuration.process.changedKeys(to: new.configuration.process)
        if !changed.isEmpty {
            logger.warning("reload: \(changed.joined(separator: ", ")) changed; this takes effect only after a restart")
        }
        current.withLock { $0 = new }
        logger.notice("reloaded \(configPath): \(new.identities.identities.count) identities")
        expiry.check(new)
    }

    func finished(_ message: MessageContext, outcome: PolicyOutcome, milliseconds: Double) {
        metrics?.record(outcome, milliseconds: milliseconds)
        let level: Logger.Level
        switch outcome.decision {
        case .error: level = .error
        case .unauthorised, .stripped: level = .warning
        case .verified where outcome.action != .accept: level = .notice
        default: level = .info
        }
        // The message is an autoclosure: the line is only formatted when the level is logged
        // (formatting it cost about 5% of the milter's CPU at LogLevel warning).
        logger.log(level: level, "\(MessageLogLine.format(message, outcome: outcome, milliseconds: milliseconds))")
        if let report = outcome.report { sendReport(report, queueID: message.queueID) }
    }

    /// Mails a report the policy asked for, unless one for the same sender went out within the
    /// hour. Sent from a thread of its own so the MTA's end-of-message reply is not delayed
    /// (signals are blocked in every thread, see RunCommand.run).
    private func sendReport(_ report: ReportMail, queueID: String?) {
        guard reportLimiter.permit(report.rateKey) else {
            logger.info("\(queueID ?? "NOQUEUE"): report to \(report.recipient) about \(report.rateKey) held back (one per sender per hour)")
            return
        }
        let mailer = ReportMailer(sendmailCommand: setup.configuration.sendmailCommand, logger: logger)
        let what = "\(queueID ?? "NOQUEUE"): broken-signature report about \(report.rateKey)"
        Thread { mailer.send(report, what: what) }.start()
    }

    func recipientRefused(_ recipient: String, answer: RecipientAnswer, queueID: String?) {
        metrics?.recordRecipient(answer)
        let reply = answer.action.reply.map { "\($0.code) \($0.xcode) \($0.text)" } ?? ""
        logger.info("NOQUEUE: recipient <\(EnvelopeAddress.normalise(recipient))> \(answer.action.keyword): \(reply)")
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
