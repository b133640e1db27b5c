// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME

extension MessageVerifier {
    /// Verifies a stored message like `verify(message:at:)` and also diagnoses a signature whose
    /// stored copy differs from what was signed.
    ///
    /// A `fail` with a digest mismatch carries its diagnosis already. Any other multipart/signed
    /// report (pass, or a failure of the certificate path) whose signed part is stored with other
    /// line ends than CRLF (as some archives and Bouncy Castle's test data keep mail) gets a
    /// `lineEndsChanged` diagnosis when the oracle confirms it: the copy differs from the signed
    /// bytes, the canonical CRLF form matches the signed digest. The result is never changed by
    /// this; it is a note for the `diagnose` command.
    public func verifyAndDiagnose(message bytes: [UInt8], at time: Date) -> VerificationReport {
        guard let stored = try? storedMessage(bytes) else { return verify(message: bytes, at: time) }
        return verifyAndDiagnose(fields: stored.fields, body: stored.body, fromAddress: Self.fromAddress(stored.fields), at: time)
    }

    /// `verify(fields:body:fromAddress:at:)` with the line-end note of `verifyAndDiagnose(message:at:)`.
    public func verifyAndDiagnose(fields: [HeaderField], body: [UInt8], fromAddress: String?, at time: Date) -> VerificationReport {
        var report = verify(fields: fields, body: body, fromAddress: fromAddress, at: time)
        guard report.result != .none, report.result != .neutral, report.diagnosis == nil, options.diagnosis.enabled else { return report }
        guard let root = try? MIMEParser.parse(fields: fields, body: body, limits: options.limits),
              case .detached(_, let signed, let signature) = SignatureLocator.locate(root),
              !LineEnds.isCRLF(signed.rawBytes),
              case .success(let der) = decode(signature)
        else { return report }
        let diagnosis = diagnoser.diagnose(signedContent: Array(signed.rawBytes), signature: der, canonicalChecked: false)
        if diagnosis.confidence == .confirmed { report.diagnosis = diagnosis }
        return report
    }
}
