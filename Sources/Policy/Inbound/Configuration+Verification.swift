// SPDX-License-Identifier: Apache-2.0
import MIME
import SMIME

extension Configuration {
    /// The verifier options this configuration asks for (`AllowWeakAlgorithms`,
    /// `PartialSignatures`, the limits `MaxMIMEDepth` ... `DiagnosisTimeBudget`): one place, so
    /// the milter and the `verify` command verify alike. `diagnosis` replaces the configured
    /// diagnosis budget (the `diagnose` command's own options).
    public func verificationOptions(diagnosis: DiagnosisOptions? = nil) -> VerificationOptions {
        let configuredDiagnosis = DiagnosisOptions(enabled: limits.diagnosisDigests > 0,
                                                   maxDigestComputations: limits.diagnosisDigests,
                                                   timeBudget: .milliseconds(limits.diagnosisMilliseconds))
        var options = VerificationOptions(
            allowWeakAlgorithms: allowWeakAlgorithms,
            limits: mimeLimits,
            maxCertificates: limits.signatureCertificates, maxSigners: limits.signers,
            diagnosis: diagnosis ?? configuredDiagnosis)
        options.partialSignatures = partialSignatures
        return options
    }

    /// The MIME bounds for inbound mail (verification, harvest, diagnosis).
    public var mimeLimits: MIMELimits {
        MIMELimits(maxDepth: limits.mimeDepth, maxParts: limits.mimeParts, maxHeaderFields: limits.headerFields)
    }
}
