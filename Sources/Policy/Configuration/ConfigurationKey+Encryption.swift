// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Keys for encrypting outbound mail to recipients whose certificates are known.
extension ConfigurationKey {
    static let encryption: [ConfigurationKey] = [
        ConfigurationKey(
            name: "EncryptionTable",
            syntax: "PATH",
            defaultValue: "none (nothing is encrypted)",
            doc: "Which recipients get encrypted mail: lines of PATTERN encrypt|require|never [sign=detached|opaque|skip], first match wins, patterns as in the SigningTable; without the table nothing changes.",
            apply: { value, context, config in config.encryptionTable = try context.table(value, for: "EncryptionTable") },
            show: { $0.encryptionTable?.file }
        ),
        ConfigurationKey(
            name: "CertificateStore",
            syntax: "sqlite:PATH | postgresql://USER@HOST[:PORT][,HOST[:PORT]]/DB",
            defaultValue: CertificateStoreSpec.default.description,
            doc: "Where recipient certificates (harvested, loaded from RecipientCertificateDir, imported) are kept: one SQLite file, or a PostgreSQL database shared by several gateways (hosts: a primary and its standbys; see docs/cluster.md).",
            apply: { value, context, config in
                do {
                    config.certificateStore = try CertificateStoreSpec.parse(value, relativeTo: context.directory)
                } catch let error as CertificateStoreAddressError {
                    // A password written into the address is not repeated in the error.
                    if error.description.hasPrefix("no password") { throw context.failure("CertificateStore: \(error.description)") }
                    throw ValueProblem(error.description)
                }
            },
            show: { $0.certificateStore.description }
        ),
        ConfigurationKey(
            name: "RecipientCertificateDir",
            syntax: "PATH",
            defaultValue: "none",
            doc: "Directory of PEM certificates of partners (one or more per file, intermediates after the certificate), loaded into the CertificateStore at start and on reload.",
            apply: { value, context, config in config.recipientCertificateDir = try context.path(value) },
            show: { $0.recipientCertificateDir }
        ),
        ConfigurationKey(
            name: "HarvestCertificates",
            syntax: "yes | no",
            defaultValue: "yes",
            doc: "Keep the signer's certificate and SMIMECapabilities of inbound mail that verifies smime=pass (trusted chain, signer = From, nothing weak, within validity) in the CertificateStore.",
            apply: { value, _, config in config.harvestCertificates = try ValueParsers.boolean(value) },
            show: { $0.harvestCertificates ? "yes" : "no" }
        ),
        ConfigurationKey(
            name: "EncryptionCipher",
            syntax: "auto | aes-256-cbc | aes-256-gcm",
            defaultValue: "auto",
            doc: "The content cipher: auto uses AES-256-GCM (AuthEnvelopedData) only when every recipient's SMIMECapabilities announce it, else AES-256-CBC, which every client decrypts.",
            apply: { value, _, config in config.encryptionCipher = try ValueParsers.choice(value, EncryptionCipherChoice.self) },
            show: { $0.encryptionCipher.rawValue }
        ),
        ConfigurationKey(
            name: "RSAKeyTransport",
            syntax: "pkcs1 | oaep",
            defaultValue: "pkcs1",
            doc: "How the message key is encrypted to RSA recipients: PKCS#1 v1.5 (every client) or RSA-OAEP (NSS 3.87 and gpgsm 2.2 cannot decrypt it); EC recipients always get ECDH.",
            apply: { value, _, config in config.rsaKeyTransport = try ValueParsers.choice(value, RSAKeyTransportChoice.self) },
            show: { $0.rsaKeyTransport.rawValue }
        ),
        ConfigurationKey(
            name: "ArchiveCertificate",
            syntax: "PATH",
            defaultValue: "none",
            doc: "A PEM certificate (the organisation's archive) that every encrypted message is also encrypted to.",
            apply: { value, context, config in config.archiveCertificate = try context.path(value) },
            show: { $0.archiveCertificate }
        ),
        ConfigurationKey(
            name: "OnMissingRecipientCertificate",
            syntax: "tempfail | reject",
            defaultValue: "tempfail",
            doc: "Mail for a require recipient without a usable certificate, which never receives plaintext: tempfail (4xx, retried later) or reject (5xx).",
            apply: { value, _, config in
                config.onMissingRecipientCertificate = try ValueParsers.choice(value, MissingRecipientCertificateAction.self)
            },
            show: { $0.onMissingRecipientCertificate.rawValue }
        ),
    ]
}

/// `RSAKeyTransport`, as the configuration spells it.
public enum RSAKeyTransportChoice: String, Sendable, Equatable, CaseIterable {
    case pkcs1
    case oaep
}
