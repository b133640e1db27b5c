// SPDX-License-Identifier: Apache-2.0
import SMIME

extension Configuration {
    /// The verifier options this configuration asks for (`AllowWeakAlgorithms`,
    /// `PartialSignatures`): one place, so the milter and the `verify` command verify alike.
    public func verificationOptions(diagnosis: DiagnosisOptions = DiagnosisOptions()) -> VerificationOptions {
        var options = VerificationOptions(allowWeakAlgorithms: allowWeakAlgorithms, diagnosis: diagnosis)
        options.partialSignatures = partialSignatures
        return options
    }
}
