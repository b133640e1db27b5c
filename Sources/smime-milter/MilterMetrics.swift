// SPDX-License-Identifier: Apache-2.0
import Foundation
import Metrics
import Milter
import Policy
import Prometheus
import SMIME

/// The milter's metrics, through swift-metrics with the Prometheus backend. Recorded from the
/// delegate's `finished` (one place per message, like the log line), so the counts equal the
/// log's.
final class MilterMetrics: Sendable {
    let registry: PrometheusCollectorRegistry

    init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .seconds(2.5), .seconds(5),
        ]
        MetricsSystem.bootstrap(factory)
    }

    /// Counts one message and its time.
    func record(_ outcome: PolicyOutcome, milliseconds: Double) {
        Counter(label: "smime_milter_messages_total", dimensions: [("decision", outcome.decision.keyword)]).increment()
        if case let .verified(result, _) = outcome.decision {
            Counter(label: "smime_milter_inbound_results_total", dimensions: [("result", result.rawValue)]).increment()
        }
        // A broken signature, inbound or outbound, with what broke it.
        if let cause = outcome.details.first(where: { $0.0 == "cause" })?.1 {
            Counter(label: "smime_milter_broken_signatures_total", dimensions: [("cause", cause)]).increment()
        }
        // Encryption: encrypted messages, messages refused or sent in plaintext, harvest decisions.
        if let encrypted = outcome.details.first(where: { $0.0 == "encrypted" })?.1 {
            Counter(label: "smime_milter_encryption_total", dimensions: [("result", encrypted == "no" ? "not_encrypted" : "encrypted")]).increment()
        }
        // Decryption: decrypted, kept, or failed by cause.
        if let decryption = outcome.details.first(where: { $0.0 == "decryption" })?.1 {
            let cause = outcome.details.first(where: { $0.0 == "decrypt_cause" })?.1 ?? ""
            Counter(label: "smime_milter_decryption_total", dimensions: [("result", decryption), ("cause", cause)]).increment()
        }
        if let harvest = outcome.details.first(where: { $0.0 == "harvest" })?.1 {
            Counter(label: "smime_milter_certificates_harvested_total",
                    dimensions: [("result", harvest == "kept" ? "kept" : harvest == "refused" ? "refused" : "store_error")]).increment()
        }
        Timer(label: "smime_milter_message_duration_seconds").recordNanoseconds(Int64(milliseconds * 1_000_000))
    }

    /// Revocation checks (by source and status), cache hits and fetch latency. swift-metrics'
    /// global factory is used, so these count only once `MilterMetrics` bootstrapped it.
    static let revocationEvents = RevocationEvents(
        checked: { source, status in
            Counter(label: "smime_milter_revocation_checks_total", dimensions: [("source", source), ("status", status)]).increment()
        },
        cacheHit: { kind in
            Counter(label: "smime_milter_revocation_cache_hits_total", dimensions: [("kind", kind)]).increment()
        },
        fetched: { kind, seconds, ok in
            Timer(label: "smime_milter_revocation_fetch_duration_seconds",
                  dimensions: [("kind", kind), ("outcome", ok ? "response" : "failed")])
                .recordNanoseconds(Int64(seconds * 1_000_000_000))
        })

    /// The certificate store: operation latency, pool use, errors by kind, read-cache hits.
    static let storeEvents = RecipientStoreEvents(
        cacheLookup: { hit in
            Counter(label: "smime_milter_store_cache_lookups_total", dimensions: [("result", hit ? "hit" : "miss")]).increment()
        },
        operation: { name, seconds, ok in
            Timer(label: "smime_milter_store_operation_duration_seconds",
                  dimensions: [("operation", name), ("outcome", ok ? "ok" : "error")])
                .recordNanoseconds(Int64(seconds * 1_000_000_000))
        },
        error: { kind in
            Counter(label: "smime_milter_store_errors_total", dimensions: [("kind", kind)]).increment()
        },
        pool: { inUse, open in
            Gauge(label: "smime_milter_store_pool_connections", dimensions: [("state", "in_use")]).record(inUse)
            Gauge(label: "smime_milter_store_pool_connections", dimensions: [("state", "open")]).record(open)
        })

    /// Per identity, whether its certificate is revoked (1) or not (0), when checked.
    func setIdentityRevocation(_ statuses: [String: ChainRevocation]) {
        for (name, status) in statuses {
            Gauge(label: "smime_milter_identity_revoked", dimensions: [("identity", name)])
                .record(status.revoked == nil ? 0 : 1)
        }
    }

    /// A recipient deferred or refused at RCPT time: `class_split` (452 4.5.3), `no_certificate`
    /// (a `require` recipient without a usable certificate), `store_error`.
    func recordRecipient(_ answer: RecipientAnswer) {
        Counter(label: "smime_milter_recipients_deferred_total", dimensions: [("reason", answer.refusal ?? "other")]).increment()
    }

    /// Per identity, its certificate's not-after as a Unix time (for expiry alerts).
    func setCertificates(_ statuses: [CertificateStatus]) {
        for s in statuses {
            Gauge(label: "smime_milter_certificate_not_after_seconds", dimensions: [("identity", s.name)])
                .record(s.notAfter.timeIntervalSince1970)
        }
    }

    /// What `smime-milter identity` recorded in StateDirectory: `smime_milter_renewals_total{result}`
    /// (enrolments and renewals, all addresses, counted in the state file so they survive the
    /// separate runs), and per identity whether the last one succeeded and when it ran. The
    /// failure's reason is in the log and the ExpiryReport mail (free text is no label).
    func setEnrolments(_ states: [String: LifecycleState.Result]) {
        Gauge(label: "smime_milter_renewals_total", dimensions: [("result", "ok")])
            .record(states.values.reduce(0) { $0 + ($1.succeeded ?? 0) })
        Gauge(label: "smime_milter_renewals_total", dimensions: [("result", "failed")])
            .record(states.values.reduce(0) { $0 + ($1.failed ?? 0) })
        for (address, result) in states {
            Gauge(label: "smime_milter_identity_last_enrolment_ok", dimensions: [("identity", address)]).record(result.ok ? 1 : 0)
            Gauge(label: "smime_milter_identity_last_enrolment_seconds", dimensions: [("identity", address)])
                .record(result.time.timeIntervalSince1970)
        }
    }

    /// The Prometheus text exposition, with the gauges read at scrape time.
    func exposition() -> [UInt8] {
        let counts = MilterServer.activity()
        Gauge(label: "smime_milter_connections").record(counts.connections)
        Gauge(label: "smime_milter_messages_in_flight").record(counts.messagesInFlight)
        if let refused = MilterServer.refusedPackets() {
            Gauge(label: "smime_milter_listener_dropped_packets").record(refused)
        }
        return registry.emitToBuffer()
    }
}
