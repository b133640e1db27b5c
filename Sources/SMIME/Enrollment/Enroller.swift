// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A certificate authority's enrolment interface, as the gateway uses it: send a request for a
/// key and a mailbox, get the CA's answer (PEM certificates); ask it to revoke a certificate.
/// Back ends: `CommandEnroller` (`EnrollCommand`/`RevokeCommand`) and `CMPEnroller` (RFC 4210
/// with the RFC 9483 lightweight profile, OpenSSL's CMP client). The answer is checked by
/// `IssuedCertificate.check` before anything is installed, whatever the back end.
public protocol Enroller: Sendable {
    /// A short name for logs and the state file ("command /usr/local/bin/enrol", "cmp 127.0.0.1:8080/pkix/").
    var description: String { get }
    /// Enrols `request` (made for `key`); returns the CA's answer as PEM text. Throws
    /// `EnrolmentError` with the CA's own words when it refuses or cannot be reached.
    func enrol(request: CertificateRequest, key: NewKey) throws -> [UInt8]
    /// Asks the CA to revoke `certificatePEM` (the leaf first) for `reason`.
    func revoke(certificatePEM: [UInt8], key: NewKey?, reason: RevocationReason) throws
}

/// Why a certificate is revoked (the CRLReason values the gateway uses, RFC 5280 §5.3.1).
public enum RevocationReason: Int32, Sendable {
    /// The key was replaced on renewal.
    case superseded = 4
    /// The sender left (the address disappeared from the directory).
    case cessationOfOperation = 5
}

/// An enrolment or revocation that did not give a certificate: the CA's answer or why it
/// could not be asked.
public struct EnrolmentError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, with the CA's answer (status text, program output) when there is one.
    public let message: String
    /// Whether asking again later may succeed (the CA was unreachable, timed out); false for a
    /// refusal or a wrong certificate.
    public let temporary: Bool

    /// Makes an error.
    public init(_ message: String, temporary: Bool) {
        self.message = message
        self.temporary = temporary
    }

    public var description: String { message }
}
