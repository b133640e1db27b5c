// SPDX-License-Identifier: Apache-2.0
import Foundation

/// What an external verifier said.
struct Verdict: Sendable {
    /// Whether the verifier accepted the signature (exit status and its own words).
    var valid: Bool
    /// The content the verifier extracted (opaque) or saw (detached), when it writes one.
    var content: [UInt8]
    /// The verifier's output, for failure messages.
    var log: String
}

/// `openssl cms -verify` against the test root, on a whole S/MIME message.
enum OpenSSLVerifier {
    /// Verifies a complete message (multipart/signed or application/pkcs7-mime) in wire form
    /// (CRLF). `-binary` makes OpenSSL hash the part exactly as it is, so a line-ending slip
    /// cannot be hidden by OpenSSL's canonicalisation; `-crlfeol` tells its MIME reader that
    /// lines end in CRLF (without it, `-binary` keeps the CR before the closing delimiter).
    static func verify(message: [UInt8], root: String) throws -> Verdict {
        let scratch = try TemporaryDirectory(prefix: "openssl")
        let input = try scratch.write("message.eml", message)
        let output = scratch.path + "/content"
        let result = try Subprocess.run("openssl", ["cms", "-verify", "-binary", "-crlfeol", "-in", input, "-CAfile", root, "-out", output])
        let content = (try? Data(contentsOf: URL(fileURLWithPath: output))).map { [UInt8]($0) } ?? []
        return Verdict(valid: result.status == 0 && result.stderr.contains("Verification successful"),
                       content: content, log: result.combined)
    }

    /// `openssl cms -cmsout -print` of a DER SignedData.
    static func print(der: [UInt8]) throws -> String {
        let scratch = try TemporaryDirectory(prefix: "print")
        let input = try scratch.write("sig.der", der)
        let result = try Subprocess.run("openssl", ["cms", "-cmsout", "-print", "-inform", "DER", "-in", input])
        guard result.status == 0 else { throw TestFailure("openssl cms -print failed: \(result.combined)") }
        return result.stdout
    }
}

/// NSS (the library in Thunderbird) through `cmsutil`, with a throw-away database trusting the root.
enum NSSVerifier {
    /// Verifies a detached signature (`content` given) or an opaque one (`content` nil).
    /// `cmsutil -h 1` prints `signer0.status=GoodSignature` only when the signature is valid
    /// and the signer chains to a trusted root for certUsageEmailSigner; its exit status is 0
    /// even for a bad signature, so the text is what counts.
    static func verify(signature: [UInt8], content: [UInt8]?, root: String) throws -> Verdict {
        let scratch = try TemporaryDirectory(prefix: "nss")
        let db = "sql:" + scratch.path
        let made = try Subprocess.run("certutil", ["-N", "--empty-password", "-d", db])
        guard made.status == 0 else { throw TestFailure("certutil -N failed: \(made.combined)") }
        let added = try Subprocess.run("certutil", ["-A", "-n", "test-root", "-t", "C,C,C", "-i", root, "-d", db])
        guard added.status == 0 else { throw TestFailure("certutil -A failed: \(added.combined)") }
        let input = try scratch.write("sig.der", signature)
        let output = scratch.path + "/decoded"
        var arguments = ["-D", "-i", input, "-d", db, "-h", "1", "-o", output]
        if let content {
            arguments += ["-c", try scratch.write("content", content)]
        }
        let result = try Subprocess.run("cmsutil", arguments)
        let written = (try? Data(contentsOf: URL(fileURLWithPath: output))).map { [UInt8]($0) } ?? []
        // With -o, the -h status lines go to the output file, ahead of the content.
        let log = result.combined + String(decoding: written, as: UTF8.self)
        let valid = result.status == 0 && log.contains("signer0.status=GoodSignature;") && log.contains("nsigners=1;")
        return Verdict(valid: valid, content: written, log: log)
    }
}

/// GnuPG's S/MIME tool `gpgsm`, with a throw-away home trusting the root and CRL checks off.
enum GPGSMVerifier {
    static func verify(signature: [UInt8], content: [UInt8]?, root: String) throws -> Verdict {
        let scratch = try TemporaryDirectory(prefix: "gpgsm")
        let home = scratch.path + "/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        let environment = ["GNUPGHOME": home]
        // The agent gpgsm starts (for the trust list) belongs to this home; stop it when done.
        defer { _ = try? Subprocess.run("gpgconf", ["--kill", "gpg-agent"], environment: environment) }
        try Data("disable-crl-checks\n".utf8).write(to: URL(fileURLWithPath: home + "/gpgsm.conf"))
        let imported = try Subprocess.run("gpgsm", ["--batch", "--import", root], environment: environment)
        guard imported.status == 0 else { throw TestFailure("gpgsm --import failed: \(imported.combined)") }
        let listing = try Subprocess.run("gpgsm", ["--with-colons", "--list-keys"], environment: environment)
        guard let fingerprint = listing.stdout.split(separator: "\n").first(where: { $0.hasPrefix("fpr:") })?
            .split(separator: ":", omittingEmptySubsequences: false).dropFirst(9).first
        else { throw TestFailure("no root fingerprint from gpgsm: \(listing.combined)") }
        try Data("\(fingerprint) S\n".utf8).write(to: URL(fileURLWithPath: home + "/trustlist.txt"))

        let input = try scratch.write("sig.der", signature)
        let output = scratch.path + "/decoded"
        var arguments = ["--batch", "--status-fd", "1", "--verify"]
        if let content {
            arguments += [input, try scratch.write("content", content)]
        } else {
            arguments = ["--batch", "--status-fd", "1", "--output", output, "--verify", input]
        }
        let result = try Subprocess.run("gpgsm", arguments, environment: environment)
        let written = (try? Data(contentsOf: URL(fileURLWithPath: output))).map { [UInt8]($0) } ?? []
        let valid = result.status == 0 && result.stderr.contains("Good signature")
            && result.stdout.contains("[GNUPG:] TRUST_FULLY")
        return Verdict(valid: valid, content: written, log: result.combined)
    }
}
