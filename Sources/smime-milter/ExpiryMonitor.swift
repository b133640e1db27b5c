// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Policy

/// Warns before signing certificates expire: in the log at each `ExpiryWarnDays` threshold
/// (checked at start, on reload and daily), by mail to `ExpiryReport` once per threshold per
/// certificate, and as a metric. Lapsed certificates are what administrators fear most: mail
/// then silently goes out unsigned.
final class ExpiryMonitor: Sendable {
    private let logger: Logger
    private let metrics: MilterMetrics?
    /// Reports already sent ("identity|notAfter|threshold"), so each goes once per process.
    private let reported = Locked<Set<String>>([])

    init(logger: Logger, metrics: MilterMetrics?) {
        self.logger = logger
        self.metrics = metrics
    }

    func check(_ setup: LoadedSetup, now: Date = Date()) {
        checkRevocation(setup)
        checkEnrolments(setup, now: now)
        let statuses = CertificateExpiry.statuses(identities: setup.identities, configuration: setup.configuration, now: now)
        metrics?.setCertificates(statuses)
        let iso = ISO8601DateFormatter()
        for s in statuses {
            let who = "identity \(s.name) (\(s.addresses.joined(separator: ", ")))"
            let text: String
            if s.daysLeft < 0 || s.note == "expired" {
                text = "certificate of \(who) expired on \(iso.string(from: s.notAfter)); mail for it is not signed (OnExpiredCertificate \(setup.configuration.onExpiredCertificate.rawValue))"
            } else if s.warningThreshold != nil {
                text = "certificate of \(who) expires in \(s.daysLeft) days, on \(iso.string(from: s.notAfter))"
            } else {
                continue
            }
            logger.warning("\(text)")
            guard let address = setup.configuration.expiryReport else { continue }
            // An expired certificate gets a report of its own, after the last threshold's.
            let stage = s.daysLeft < 0 || s.note == "expired" ? "expired" : s.warningThreshold.map(String.init) ?? "none"
            let key = "\(s.name)|\(s.notAfter.timeIntervalSince1970)|\(stage)"
            let isNew = reported.withLock { $0.insert(key).inserted }
            if isNew && !sendReport(to: address, text: text, setup: setup) { _ = reported.withLock { $0.remove(key) } }
        }
    }

    /// Revoked identities (found at load: they are not used to sign): a log line, the metric,
    /// and one report mail per certificate per process.
    func checkRevocation(_ setup: LoadedSetup) {
        metrics?.setIdentityRevocation(setup.identityRevocation)
        for (name, status) in setup.identityRevocation.sorted(by: { $0.key < $1.key }) {
            if let reason = status.revokedReason {
                let text = "certificate of identity \(name) is revoked: \(reason); it is not used to sign"
                logger.error("\(text)")
                guard let address = setup.configuration.expiryReport else { continue }
                let key = "\(name)|revoked|\(status.certificates.first?.subject ?? "")"
                let isNew = reported.withLock { $0.insert(key).inserted }
                if isNew && !sendReport(to: address, text: text, setup: setup, subject: "signing certificate revoked") {
                    _ = reported.withLock { $0.remove(key) }
                }
            } else if let unknown = status.unknownReason {
                logger.warning("identity \(name): \(unknown); it is still used")
            }
        }
    }

    /// The results `smime-milter identity` recorded (renewals done and failed, with the CA's
    /// answer): metrics, a log line, and one ExpiryReport mail per result of the last day per process.
    func checkEnrolments(_ setup: LoadedSetup, now: Date = Date()) {
        let states = LifecycleState(directory: setup.configuration.lifecycle.stateDirectory).read()
        metrics?.setEnrolments(states)
        for text in Self.enrolmentReports(states, now: now) {
            if text.failed { logger.warning("\(text.text)") } else { logger.info("\(text.text)") }
            guard let address = setup.configuration.expiryReport else { continue }
            let isNew = reported.withLock { $0.insert(text.key).inserted }
            if isNew && !sendReport(to: address, text: text.text, setup: setup,
                                    subject: text.failed ? "certificate enrolment or renewal failed" : "certificate enrolled or renewed") {
                _ = reported.withLock { $0.remove(text.key) }
            }
        }
    }

    /// Report lines for the results recorded within the last day (older ones were reported by the
    /// process that ran then), failures first.
    static func enrolmentReports(_ states: [String: LifecycleState.Result], now: Date) -> [(key: String, text: String, failed: Bool)] {
        let iso = ISO8601DateFormatter()
        return states.sorted { ($0.value.ok ? 1 : 0, $0.key) < ($1.value.ok ? 1 : 0, $1.key) }
            .filter { now.timeIntervalSince($0.value.time) < 86_400 && $0.value.removed == nil }
            .map { address, r in
                let text = r.ok
                    ? "identity \(address): \(r.message) at \(r.backend) on \(iso.string(from: r.time))"
                    : "identity \(address): \(r.message) (at \(r.backend) on \(iso.string(from: r.time))); the current certificate, if any, is still used"
                return (key: "enrolment|\(address)|\(r.time.timeIntervalSince1970)", text: text, failed: !r.ok)
            }
    }

    /// Checks again once a day, from a thread of its own (started after signals are blocked).
    func startDaily(current: @escaping @Sendable () -> LoadedSetup) {
        let thread = Thread { [self] in
            while true {
                sleep(86_400)
                check(current())
            }
        }
        thread.start()
    }

    @discardableResult private func sendReport(to address: String, text: String, setup: LoadedSetup,
                                               subject: String = "signing certificate expiry") -> Bool {
        let host = setup.configuration.authservID
        let body = """
            \(text)

            Install a renewed certificate in \(setup.configuration.certificateDir ?? "the CertificateDir") and reload
            smime-milter (systemctl reload smime-milter, or SIGHUP). "smime-milter certs" lists all identities.
            """
        let mail = ReportMail(recipient: address, subject: "smime-milter on \(host): \(subject)",
                              text: body, rateKey: "")
        return ReportMailer(sendmailCommand: setup.configuration.sendmailCommand, logger: logger).send(mail, what: "expiry report")
    }
}
