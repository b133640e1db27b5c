// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import SMIME

/// What to do with a signer's certificate found in inbound mail.
public enum HarvestDecision: Sendable, Equatable {
    /// Keep it for this address (the From address it was verified against).
    case keep(address: String)
    /// Do not keep it; the reason is for the harvest log.
    case refuse(reason: String)
}

/// Which certificates are harvested from inbound mail: a pure function of the verification
/// report of the message, its From address and the candidate read from its signature.
///
/// Only a signature that verified `smime=pass` (trusted chain, signer = From, within validity;
/// the verifier's own checks) gives a certificate, and only when, in addition, nothing is weak
/// (the SignerInfo's digest and key, the certificate's own signature; the verifier passes weak
/// algorithms with AllowWeakAlgorithms), the certificate names the From address and is
/// within its validity at arrival. Expired, untrusted, weak or signer-is-not-From: never.
public enum HarvestRules {
    public static func decide(report: VerificationReport, fromAddress: String?,
                              candidate: SignerCertificateCandidate?, at time: Date) -> HarvestDecision {
        guard report.result == .pass else {
            return .refuse(reason: "signature did not pass (smime=\(report.result.rawValue)"
                           + (report.reason.map { ": \($0)" } ?? "") + ")")
        }
        guard let from = fromAddress?.lowercased(), !from.isEmpty else { return .refuse(reason: "no From address") }
        guard let candidate else { return .refuse(reason: "no signer certificate in the signature") }
        let info = candidate.certificate.info
        guard report.identifier?.lowercased() == from, info.addresses.contains(from) else {
            return .refuse(reason: "signer is not the From address \(from) (certificate names \(info.addresses.joined(separator: ", ")))")
        }
        if let serial = report.serialHex, serial != info.serialHex {
            return .refuse(reason: "the certificate is not the verified signer's")
        }
        if let weak = candidate.weakness { return .refuse(reason: "weak algorithm: \(weak)") }
        if let weak = candidate.certificate.weakSignatureAlgorithm {
            return .refuse(reason: "weak algorithm: the certificate is signed with \(weak)")
        }
        if candidate.certificate.keyKind == .rsa && candidate.certificate.keyBits < 2048 {
            return .refuse(reason: "weak key: \(info.keyDescription)")
        }
        if time < info.notBefore || time > info.notAfter { return .refuse(reason: "certificate is not within its validity") }
        if candidate.certificate.keyKind == .other {
            return .refuse(reason: "a \(info.keyDescription) key cannot be encrypted to")
        }
        return .keep(address: from)
    }
}

/// Harvesting as the milter does it at end-of-message of inbound mail, after verifying: read the
/// signer's certificate, decide with `HarvestRules`, keep it in the store and log the decision.
/// Safe to call from many threads (the store is).
public struct RecipientCertificateHarvester: Sendable {
    public let store: any RecipientCertificateStore

    public init(store: any RecipientCertificateStore) { self.store = store }

    /// Harvests from one verified message; returns the log entry written (nil when the message
    /// was not signed at all, which is not worth a log line). Store errors are thrown: the
    /// caller logs them and goes on (harvesting never changes what happens to the message).
    @discardableResult
    public func harvest(fields: [HeaderField], body: [UInt8], report: VerificationReport, fromAddress: String?,
                        queueID: String?, at time: Date) throws -> HarvestLogEntry? {
        guard report.result != .none else { return nil }
        let candidates = report.result == .pass ? SignerHarvest.candidates(fields: fields, body: body) : []
        let from = fromAddress?.lowercased()
        let candidate = candidates.first { $0.certificate.info.addresses.contains(from ?? "") } ?? candidates.first
        let decision = HarvestRules.decide(report: report, fromAddress: from, candidate: candidate, at: time)
        let entry: HarvestLogEntry
        switch decision {
        case .keep(let address):
            guard let candidate else { return nil }
            let record = StoredRecipientCertificate(address: address, certificate: candidate.certificate,
                                                    intermediates: candidate.intermediates,
                                                    capabilities: candidate.capabilities, source: .harvested, at: time)
            let outcome = try store.upsert(record)
            entry = HarvestLogEntry(time: time, address: address, fingerprint: candidate.certificate.fingerprint, kept: true,
                                    reason: Self.words(outcome), queueID: queueID)
        case .refuse(let reason):
            entry = HarvestLogEntry(time: time, address: from ?? report.identifier ?? "", fingerprint: candidate?.certificate.fingerprint,
                                    kept: false, reason: "refused: " + reason, queueID: queueID)
        }
        try store.logHarvestDecision(entry)
        return entry
    }

    static func words(_ outcome: RecipientCertificateUpsert) -> String {
        switch outcome {
        case .inserted: return "kept (new)"
        case .replaced(let previous): return "kept (replaces \(previous.prefix(16)))"
        case .refreshed: return "kept (seen again)"
        case .keptAsHistory: return "kept as history (older than the current certificate)"
        }
    }
}
