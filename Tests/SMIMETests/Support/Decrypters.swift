// SPDX-License-Identifier: Apache-2.0
import Foundation

/// What an external decrypter gave back.
struct Decrypted: Sendable {
    /// Whether it exited successfully.
    var ok: Bool
    /// The plaintext it wrote.
    var content: [UInt8]
    /// Its output, for failure messages.
    var log: String
}

/// `openssl cms -decrypt` with the recipient's certificate and key (one PEM file holding both).
enum OpenSSLDecrypter {
    /// Decrypts DER EnvelopedData/AuthEnvelopedData.
    static func decrypt(der: [UInt8], recipientPEM: String) throws -> Decrypted {
        let scratch = try TemporaryDirectory(prefix: "ossl-dec")
        let input = try scratch.write("in.der", der)
        let output = scratch.path + "/out"
        let result = try Subprocess.run("openssl", ["cms", "-decrypt", "-binary", "-inform", "DER", "-in", input,
                                                    "-recip", recipientPEM, "-inkey", recipientPEM, "-out", output])
        let content = (try? Data(contentsOf: URL(fileURLWithPath: output))).map { [UInt8]($0) } ?? []
        return Decrypted(ok: result.status == 0, content: content, log: result.combined)
    }

    /// Decrypts a whole message in S/MIME (MIME) form, as a mail client would get it.
    static func decrypt(message: [UInt8], recipientPEM: String) throws -> Decrypted {
        let scratch = try TemporaryDirectory(prefix: "ossl-dec")
        let input = try scratch.write("in.eml", message)
        let output = scratch.path + "/out"
        let result = try Subprocess.run("openssl", ["cms", "-decrypt", "-binary", "-in", input,
                                                    "-recip", recipientPEM, "-inkey", recipientPEM, "-out", output])
        let content = (try? Data(contentsOf: URL(fileURLWithPath: output))).map { [UInt8]($0) } ?? []
        return Decrypted(ok: result.status == 0, content: content, log: result.combined)
    }

    /// `openssl cms -cmsout -print` of DER CMS.
    static func print(der: [UInt8]) throws -> String {
        let scratch = try TemporaryDirectory(prefix: "ossl-print")
        let input = try scratch.write("in.der", der)
        let result = try Subprocess.run("openssl", ["cms", "-cmsout", "-print", "-inform", "DER", "-in", input])
        guard result.status == 0 else { throw TestFailure("openssl cms -print failed: \(result.combined)") }
        return result.stdout
    }

    /// A PKCS#12 of the recipient's certificate and key; `legacy` gives the 3DES/SHA-1 form gpgsm 2.2 needs.
    static func pkcs12(recipientPEM: String, passphrase: String, legacy: Bool, in scratch: TemporaryDirectory) throws -> String {
        let out = scratch.path + "/key.p12"
        var arguments = ["pkcs12", "-export", "-in", recipientPEM, "-inkey", recipientPEM, "-passout", "pass:" + passphrase,
                         "-name", "recipient", "-out", out]
        if legacy { arguments += ["-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"] }
        let result = try Subprocess.run("openssl", arguments)
        guard result.status == 0 else { throw TestFailure("openssl pkcs12 failed: \(result.combined)") }
        return out
    }
}

/// NSS `cmsutil -D` with the recipient's key imported by `pk12util` into a throw-away database.
enum NSSDecrypter {
    static func decrypt(der: [UInt8], recipientPEM: String) throws -> Decrypted {
        let scratch = try TemporaryDirectory(prefix: "nss-dec")
        let db = "sql:" + scratch.path
        let made = try Subprocess.run("certutil", ["-N", "--empty-password", "-d", db])
        guard made.status == 0 else { throw TestFailure("certutil -N failed: \(made.combined)") }
        let p12 = try OpenSSLDecrypter.pkcs12(recipientPEM: recipientPEM, passphrase: "p12", legacy: false, in: scratch)
        let imported = try Subprocess.run("pk12util", ["-i", p12, "-d", db, "-W", "p12", "-K", ""])
        guard imported.status == 0 else { throw TestFailure("pk12util failed: \(imported.combined)") }
        let input = try scratch.write("in.der", der)
        let output = scratch.path + "/out"
        let result = try Subprocess.run("cmsutil", ["-D", "-i", input, "-d", db, "-o", output])
        let content = (try? Data(contentsOf: URL(fileURLWithPath: output))).map { [UInt8]($0) } ?? []
        return Decrypted(ok: result.status == 0, content: content, log: result.combined)
    }
}

/// GnuPG `gpgsm --decrypt` with the recipient's key imported (legacy PKCS#12) into a throw-away home.
enum GPGSMDecrypter {
    /// gpgsm 2.2 refuses about one in fifty of the PKCS#12 files OpenSSL writes ("error parsing or
    /// decrypting the PKCS#12 file"), depending only on the random salt; a fresh export (new salt)
    /// into a fresh home imports. Seen on Debian 12's gpgsm 2.2.40 with every PBE choice.
    static let importAttempts = 6

    static func decrypt(der: [UInt8], recipientPEM: String) throws -> Decrypted {
        let scratch = try TemporaryDirectory(prefix: "gpgsm-dec")
        let passFile = try scratch.write("pass", Array("p12\n".utf8))
        var environment: [String: String] = [:]
        var failures: [String] = []
        for attempt in 1...importAttempts {
            let home = scratch.path + "/home\(attempt)"
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o700])
            environment = ["GNUPGHOME": home]
            let p12 = try OpenSSLDecrypter.pkcs12(recipientPEM: recipientPEM, passphrase: "p12", legacy: true, in: scratch)
            let imported = try Subprocess.run("sh", ["-c", "gpgsm --batch --pinentry-mode loopback --passphrase-fd 0 --import \"$1\" < \"$2\"",
                                                     "sh", p12, passFile], environment: environment)
            let secret = try Subprocess.run("gpgsm", ["--batch", "--with-colons", "--list-secret-keys"], environment: environment)
            if imported.status == 0, secret.status == 0, secret.stdout.split(separator: "\n").contains(where: { $0.hasPrefix("crs:") }) {
                failures = []
                break
            }
            failures.append("attempt \(attempt): \(imported.combined)")
            _ = try? Subprocess.run("gpgconf", ["--kill", "gpg-agent"], environment: environment)
        }
        defer { _ = try? Subprocess.run("gpgconf", ["--kill", "gpg-agent"], environment: environment) }
        guard failures.isEmpty else { throw TestFailure("gpgsm --import failed: \(failures.joined(separator: "\n"))") }
        let input = try scratch.write("in.der", der)
        let output = scratch.path + "/out"
        let result = try Subprocess.run("sh", ["-c", "gpgsm --batch --pinentry-mode loopback --passphrase-fd 0 --output \"$1\" --decrypt \"$2\" < \"$3\"",
                                               "sh", output, input, passFile], environment: environment)
        let content = (try? Data(contentsOf: URL(fileURLWithPath: output))).map { [UInt8]($0) } ?? []
        return Decrypted(ok: result.status == 0, content: content, log: result.combined)
    }
}

/// Bouncy Castle (Debian's libbcpkix-java) through `Tests/fixtures/BCDecrypt.java`, run as a
/// single-file Java program: the one other implementation here that decrypts GCM, OAEP and ECDH.
enum BouncyCastleDecrypter {
    static let jars = ["bcprov", "bcpkix", "bcutil"].map { "/usr/share/java/\($0).jar" }

    static func decrypt(der: [UInt8], recipientPEM: String) throws -> Decrypted {
        let scratch = try TemporaryDirectory(prefix: "bc-dec")
        let input = try scratch.write("in.der", der)
        let output = scratch.path + "/out"
        let source = TestPKI.repositoryRoot + "/Tests/fixtures/BCDecrypt.java"
        let result = try Subprocess.run("java", ["-cp", jars.joined(separator: ":"), source, input, recipientPEM, output])
        let content = (try? Data(contentsOf: URL(fileURLWithPath: output))).map { [UInt8]($0) } ?? []
        return Decrypted(ok: result.status == 0, content: content, log: result.combined)
    }
}
