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

    /// Verifies a message whose body is a spool file from the file itself, without reading it
    /// into memory, when that gives the same report as `verify(fields:body:...)`; otherwise
    /// `needsMemory`, and the caller reads the body and calls `verify(fields:body:...)`.
    ///
    /// - Throws: when the file cannot be read (an error under `OnError`, like any unreadable body).
    func verify(fields: [HeaderField], file: BodyFile, fromAddress: String?, at: Date) throws -> StreamedVerification
}

extension SignatureVerifier {
    /// A verifier that cannot stream (a test double): always the in-memory path.
    public func verify(fields: [HeaderField], file: BodyFile, fromAddress: String?, at: Date) throws -> StreamedVerification {
        .needsMemory("this verifier reads bodies in memory")
    }
}
