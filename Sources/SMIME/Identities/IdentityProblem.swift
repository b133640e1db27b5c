// SPDX-License-Identifier: Apache-2.0
/// Why a file in a CertificateDir was not loaded as a signing identity.
///
/// `reason` is meant for the operator's log; it never contains key material or passphrases.
public struct IdentityProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file the problem is about (a path as given to the loader).
    public let file: String
    /// A clear, one-line reason ("certificate expired on ...").
    public let reason: String

    /// Makes a problem report.
    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }

    /// "file: reason".
    public var description: String { "\(file): \(reason)" }
}
