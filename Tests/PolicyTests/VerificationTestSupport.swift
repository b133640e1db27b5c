// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Policy
import SMIME

/// A verifier that returns a given report: lets the policy's formatting and decisions be tested
/// on their own. (End-to-end proof with the real verifier is in Tests/integration.)
struct StubVerifier: SignatureVerifier {
    let report: VerificationReport

    func verify(fields: [HeaderField], body: [UInt8], fromAddress: String?, at: Date) -> VerificationReport {
        report
    }
}

/// A verifier that fails the test process's expectations if called: for mail that must never
/// be verified (outbound mail).
struct ExplodingVerifier: SignatureVerifier {
    func verify(fields: [HeaderField], body: [UInt8], fromAddress: String?, at: Date) -> VerificationReport {
        VerificationReport(result: .permerror, reason: "ExplodingVerifier was called")
    }
}

enum Reports {
    static let pass = VerificationReport(
        result: .pass, signerAddresses: ["alice@example.com"], identifier: "alice@example.com", part: "1")
    static let fail = VerificationReport(
        result: .fail, reason: "message digest does not match (body changed in transit)",
        signerAddresses: ["alice@example.com"], identifier: "alice@example.com", part: "1")
    static let policy = VerificationReport(
        result: .policy, reason: "signer certificate names mallory@example.net, not the From address alice@example.com",
        signerAddresses: ["mallory@example.net"], identifier: "mallory@example.net", part: "1")
    static let unsigned = VerificationReport(result: .none, reason: "not signed")
    static let encrypted = VerificationReport(result: .none, reason: "enveloped-data", isEncrypted: true)
    static let temperror = VerificationReport(result: .temperror, reason: "CRL could not be read")
    static let neutral = VerificationReport(result: .neutral, reason: "multipart/signed has 3 parts")
    static let permerror = VerificationReport(result: .permerror, reason: "signature part is not valid base64")
}

/// An inbound message from an external client (192.0.2.7, not an internal host).
func inboundMessage(
    from: String = "Alice <alice@example.com>", subject: String? = " Quarterly report",
    extraFields: [HeaderField] = [], client: String? = "192.0.2.7", sasl: String? = nil, nonSMTP: Bool = false
) -> MessageContext {
    var fields = [
        HeaderField(name: "Received", value: " from client.example.com by mx.example.net"),
    ]
    fields += extraFields
    fields.append(HeaderField(name: "From", value: " " + from))
    fields.append(HeaderField(name: "To", value: " bob@example.net"))
    if let subject { fields.append(HeaderField(name: "Subject", value: subject)) }
    fields.append(HeaderField(name: "Message-ID", value: " <1@example.com>"))
    return MessageContext(
        queueID: "TESTQ2", connection: ConnectionInfo(clientAddress: client, isNonSMTP: nonSMTP),
        saslLogin: sasl, envelopeSender: "<alice@example.com>", fields: fields, body: Array("Hello\r\n".utf8))
}

/// A configuration for verification tests (no files needed).
func verificationConfiguration(
    mode: OperatingMode = [.sign, .verify], pass: String = "", fail: String = "", none: String = "",
    required: [String] = [], onMissing: MissingSignatureAction = .tag
) -> Configuration {
    let addresses = Set(required.filter { !$0.hasPrefix("@") })
    let domains = Set(required.filter { $0.hasPrefix("@") }.map { String($0.dropFirst()) })
    return Configuration(
        mode: mode, authservID: "mx.example.net", subjectTagPass: pass, subjectTagFail: fail, subjectTagNone: none,
        requireSignature: required.isEmpty ? nil : RequiredSigners(file: "required", addresses: addresses, domains: domains),
        onMissingSignature: onMissing)
}

/// The message as the MTA would deliver it after the outcome's edits.
func delivered(_ message: MessageContext, _ outcome: PolicyOutcome) throws -> [HeaderField] {
    try MessageEditor.apply(outcome.edits, fields: message.fields, body: message.body).fields
}
