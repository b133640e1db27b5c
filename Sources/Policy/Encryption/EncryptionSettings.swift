// SPDX-License-Identifier: Apache-2.0
import SMIME

/// Where the recipient certificate store is (`CertificateStore`).
public enum CertificateStoreSpec: Sendable, Equatable, CustomStringConvertible {
    /// One SQLite file (the embedded store).
    case sqlite(path: String)
    /// A PostgreSQL database shared by several gateways (`postgresql://USER@HOST[:PORT][,HOST[:PORT]]/DB`).
    case postgresql(PostgreSQLAddress)

    /// The default: `sqlite:/var/lib/smime-milter/recipients.sqlite` (the systemd unit's
    /// StateDirectory).
    public static let defaultPath = "/var/lib/smime-milter/recipients.sqlite"
    public static let `default` = CertificateStoreSpec.sqlite(path: defaultPath)

    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:" + path
        case .postgresql(let address): return address.description
        }
    }

    /// Parses a store address: `sqlite:PATH` (a relative path resolved against `directory`) or
    /// `postgresql://...` (see `PostgreSQLAddress.parse`).
    public static func parse(_ text: String, relativeTo directory: String) throws -> CertificateStoreSpec {
        let lower = text.lowercased()
        if lower.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            do {
                return .sqlite(path: try ValueParsers.path(path, relativeTo: directory))
            } catch let problem as ValueProblem {
                throw CertificateStoreAddressError("sqlite:PATH: \(problem.reason)")
            }
        }
        if lower.hasPrefix("postgresql://") || lower.hasPrefix("postgres://") {
            return .postgresql(try PostgreSQLAddress.parse(text))
        }
        throw CertificateStoreAddressError("expected sqlite:PATH or postgresql://USER@HOST[:PORT][,HOST[:PORT]]/DB")
    }
}

/// `EncryptionCipher`: the content cipher.
public enum EncryptionCipherChoice: String, Sendable, Equatable, CaseIterable {
    /// AES-256-GCM when every recipient's SMIMECapabilities announce it, else AES-256-CBC.
    case auto
    case aes256CBC = "aes-256-cbc"
    case aes256GCM = "aes-256-gcm"
}

/// `OnMissingRecipientCertificate`: what happens to mail for a `require` recipient without a
/// usable certificate (it never gets plaintext).
public enum MissingRecipientCertificateAction: String, Sendable, Equatable, CaseIterable {
    /// 4xx: the sender's MTA keeps the mail and retries (a certificate may be harvested or
    /// imported meanwhile).
    case tempfail
    /// 5xx: the mail is bounced.
    case reject
}

extension Configuration {
    /// The encryption decisions this configuration asks for; nil without an EncryptionTable
    /// (then nothing changes: no RCPT split, no encryption).
    public var encryptionPolicy: EncryptionPolicy? {
        guard let encryptionTable else { return nil }
        return EncryptionPolicy(table: encryptionTable, cipher: encryptionCipher,
                                onMissingCertificate: onMissingRecipientCertificate, hasArchive: archiveCertificate != nil)
    }

    /// `RSAKeyTransport` for `CMSEncryptor`.
    public var cmsRSAKeyTransport: RSAKeyTransport {
        switch rsaKeyTransport {
        case .pkcs1: return .pkcs1
        case .oaep: return .oaep
        }
    }
}
