// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import SMIME

/// Checks the S/MIME signature of a whole message. `SMIME.MessageVerifier` is the real one; the
/// policy only depends on this protocol so that it can be built and tested on its own.
public protocol SignatureVerifier: Sendable {
    /// - Parameters:
    ///   - fields: the message's top-level header fields, as received.
    ///   - body: the body, CRLF line ends.
    ///   - fromAddress: the single From address (normalised), or nil when there is none.
    ///   - at: the time to validate the certificates at (arrival time).
    func verify(fields: [HeaderField], body: [UInt8], fromAddress: String?, at: Date) -> VerificationReport
}
