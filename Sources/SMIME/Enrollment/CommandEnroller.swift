// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Enrolment through a program (`EnrollCommand`): the request PEM on its standard input, the
/// certificate chain PEM on its standard output, exit status 0 on success; anything else is a
/// refusal whose standard error is the CA's answer. Revocation through `RevokeCommand`: the
/// certificate PEM on standard input, the reason name as its last argument, exit 0 on success.
/// Each run is bounded by `timeout`; a program still running then is killed (SIGKILL).
public struct CommandEnroller: Enroller {
    /// The enrolment program and its arguments (split on white space).
    public let enrolCommand: [String]
    /// The revocation program and its arguments, if any.
    public let revokeCommand: [String]?
    /// The longest a run may take.
    public let timeout: TimeInterval
    /// The most output kept from a run (the chain; more is an error).
    public static let maximumOutput = 1 << 20

    /// Makes an enroller; the commands are split on white space (no shell).
    public init(enrolCommand: String, revokeCommand: String?, timeout: TimeInterval) {
        self.enrolCommand = enrolCommand.split(whereSeparator: \.isWhitespace).map(String.init)
        self.revokeCommand = revokeCommand?.split(whereSeparator: \.isWhitespace).map(String.init)
        self.timeout = timeout
    }

    public var description: String { "command \(enrolCommand.first ?? "")" }

    public func enrol(request: CertificateRequest, key: NewKey) throws -> [UInt8] {
        let result = try Self.run(enrolCommand, input: try request.pem(), timeout: timeout)
        guard result.status == 0 else {
            throw EnrolmentError("EnrollCommand \(result.statusText): \(result.errorText)", temporary: result.timedOut)
        }
        return result.output
    }

    public func revoke(certificatePEM: [UInt8], key: NewKey?, reason: RevocationReason) throws {
        guard let revokeCommand, !revokeCommand.isEmpty else {
            throw EnrolmentError("no RevokeCommand is configured: revoke the certificate at the CA by hand", temporary: false)
        }
        let result = try Self.run(revokeCommand + [reason.name], input: certificatePEM, timeout: timeout)
        guard result.status == 0 else {
            throw EnrolmentError("RevokeCommand \(result.statusText): \(result.errorText)", temporary: result.timedOut)
        }
    }

    struct RunResult {
        var status: Int32
        var timedOut: Bool
        var output: [UInt8]
        var errors: [UInt8]
        var statusText: String {
            timedOut ? "did not finish in time and was killed" : "exited with status \(status)"
        }
        var errorText: String {
            let text = String(decoding: errors.prefix(4096), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? "(no message)" : text.replacingOccurrences(of: "\n", with: " | ")
        }
    }

    /// Runs `command` with `input` on standard input, collecting both outputs, killed after `timeout`.
    static func run(_ command: [String], input: [UInt8], timeout: TimeInterval) throws -> RunResult {
        guard let program = command.first else { throw EnrolmentError("EnrollCommand is empty", temporary: false) }
        let result: BoundedCommand.Result
        do {
            result = try BoundedCommand.run(command, input: input, timeout: timeout, outputLimit: maximumOutput)
        } catch {
            throw EnrolmentError("cannot run \(program): \(error)", temporary: false)
        }
        if result.outputTruncated {
            throw EnrolmentError("\(program) wrote more than \(maximumOutput) bytes", temporary: false)
        }
        return RunResult(status: result.status, timedOut: result.timedOut, output: result.output, errors: result.errors)
    }
}

extension RevocationReason {
    /// The RFC 5280 name (`openssl ca -crl_reason` takes it as is).
    public var name: String {
        switch self {
        case .superseded: "superseded"
        case .cessationOfOperation: "cessationOfOperation"
        }
    }
}
