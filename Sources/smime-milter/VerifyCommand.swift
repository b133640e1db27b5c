import ArgumentParser
import Foundation
import Policy
import SMIME

/// `smime-milter verify`: the verifier's result for stored messages, as the milter would write it.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify the S/MIME signature of stored messages; exit 0 when every one passes.",
        discussion: """
            Prints one line per file: FILE: smime=RESULT (reason) body.smime-identifier=... \
            body.smime-part=..., the result the milter would write in Authentication-Results. \
            Trust anchors come from --trust, else from the configuration's TrustAnchors. \
            Exit status: 0 when every file passed, 1 otherwise, 2 when the trust anchors, the \
            configuration or a file cannot be read.
            """)

    @Option(name: .shortAndLong, help: "The configuration file (for TrustAnchors).")
    var config: String?

    @Option(help: "A PEM file or a directory of PEM files with the trusted CA certificates.")
    var trust: [String] = []

    @Option(name: .customLong("crl-dir"), help: "A directory of CRLs (PEM or DER).")
    var crlDir: String?

    @Option(help: "Validate certificates as of this time (RFC 3339, e.g. 2024-05-01T12:00:00Z), or 'signing-time' to use each message's signingTime attribute (a diagnostic for archived mail).")
    var at: String?

    @Flag(name: .customLong("allow-weak"), help: "Accept MD5/SHA-1 and RSA keys under 2048 bits.")
    var allowWeak = false

    @Argument(help: "Message files (.eml).")
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one message file") }
        if let at, at != "signing-time", Self.parseTime(at) == nil {
            throw ValidationError("--at: not an RFC 3339 time: \(at)")
        }
    }

    func run() throws {
        let store: TrustStore
        do {
            store = try loadTrust()
        } catch {
            FileHandle.standardError.write(Data("smime-milter verify: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let configuration = config.flatMap { try? ConfigurationParser.load(path: $0) }
        let verifier = MessageVerifier(
            trust: store,
            options: VerificationOptions(allowWeakAlgorithms: allowWeak || configuration?.allowWeakAlgorithms == true))
        var allPassed = true
        var unreadable = false
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                print("\(file): cannot read the file")
                unreadable = true
                continue
            }
            let bytes = [UInt8](data)
            var report = verifier.verify(message: bytes, at: at.flatMap(Self.parseTime) ?? Date())
            if at == "signing-time", let signed = report.signingTime {
                report = verifier.verify(message: bytes, at: signed)
            }
            print("\(file): \(Self.describe(report))")
            if report.result != .pass { allPassed = false }
        }
        if unreadable { throw ExitCode(2) }
        if !allPassed { throw ExitCode(1) }
    }

    private func loadTrust() throws -> TrustStore {
        var anchors = trust
        var crls = crlDir
        if crls == nil, let config {
            crls = try ConfigurationParser.load(path: config).crlDir
        }
        if anchors.isEmpty {
            guard let config else {
                throw ValidationError("name the trust anchors with --trust or a configuration with TrustAnchors (--config)")
            }
            let configuration = try ConfigurationParser.load(path: config)
            guard let configured = configuration.trustAnchors else {
                throw ValidationError("\(config) sets no TrustAnchors; use --trust")
            }
            anchors = [configured]
        }
        return try TrustStore(anchors: anchors, crlDirectory: crls)
    }

    /// `smime=RESULT (reason) body.smime-identifier=... body.smime-part=...`
    static func describe(_ report: VerificationReport) -> String {
        var line = "smime=\(report.result.rawValue)"
        if let reason = report.reason { line += " (\(reason))" }
        if let identifier = report.identifier {
            line += " body.smime-identifier=\(identifier)"
        } else if let serial = report.serialHex, let issuer = report.issuer {
            line += " body.smime-serial=\(serial) body.smime-issuer=\"\(issuer.replacingOccurrences(of: "\"", with: "\\\""))\""
        }
        if let part = report.part { line += " body.smime-part=\(part)" }
        return line
    }

    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
