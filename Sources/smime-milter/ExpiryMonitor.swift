// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Policy
import Synchronization

/// Warns before signing certificates expire: in the log at each `ExpiryWarnDays` threshold
/// (checked at start, on reload and daily), by mail to `ExpiryReport` once per threshold per
/// certificate, and as a metric. Lapsed certificates are what administrators fear most: mail
/// then silently goes out unsigned.
final class ExpiryMonitor: Sendable {
    private let logger: Logger
    private let metrics: MilterMetrics?
    /// Reports already sent ("identity|notAfter|threshold"), so each goes once per process.
    private let reported = Mutex<Set<String>>([])

    init(logger: Logger, metrics: MilterMetrics?) {
        self.logger = logger
        self.metrics = metrics
    }

    func check(_ setup: LoadedSetup, now: Date = Date()) {
        checkRevocation(setup)
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
