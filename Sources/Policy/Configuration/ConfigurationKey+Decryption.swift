// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Keys for decrypting inbound mail at the gateway (docs/decryption.md).
extension ConfigurationKey {
    static let decryption: [ConfigurationKey] = [
        ConfigurationKey(
            name: "DecryptionTable",
            syntax: "PATH",
            defaultValue: "none (nothing is decrypted)",
            doc: "Which recipients get inbound encrypted mail decrypted: lines of PATTERN decrypt|keep, first match wins, patterns as in the SigningTable; the keys are the identities of CertificateDir (expired ones and archive/ included). Without the table nothing changes.",
            apply: { value, context, config in config.decryption.table = try context.table(value, for: "DecryptionTable") },
            show: { $0.decryption.table?.file }
        ),
        ConfigurationKey(
            name: "OnDecryptionError",
            syntax: "accept | tempfail | reject",
            defaultValue: "accept",
            doc: "Encrypted mail to a decrypt recipient that cannot be decrypted (no key, corrupt envelope, refused cipher, AES-GCM tag mismatch, over DecryptionMaxSize): accept delivers it as it came with the cause in X-SMIME-Decrypted, tempfail answers 451 4.7.5, reject 550 5.7.5.",
            apply: { value, _, config in config.decryption.onError = try ValueParsers.choice(value, DecryptionErrorAction.self) },
            show: { $0.decryption.onError.rawValue }
        ),
        ConfigurationKey(
            name: "DecryptionWeakCiphers",
            syntax: "refuse | accept",
            defaultValue: "refuse",
            doc: "Content encrypted with RC2, DES or 3DES: refuse leaves it encrypted (cause refused_cipher), accept decrypts it.",
            apply: { value, _, config in
                config.decryption.allowWeakCiphers = try ValueParsers.choice(value, WeakCipherChoice.self) == .accept
            },
            show: { $0.decryption.allowWeakCiphers ? "accept" : "refuse" }
        ),
        ConfigurationKey(
            name: "DecryptionMaxSize",
            syntax: "BYTES[K|M|G]",
            defaultValue: "64M",
            doc: "Decrypted content larger than this is not used (cause too_large); at least 1K.",
            apply: { value, _, config in config.decryption.maximumSize = try ValueParsers.byteSize(value, minimum: 1024) },
            show: { String($0.decryption.maximumSize) }
        ),
    ]
}

/// `OnDecryptionError`.
public enum DecryptionErrorAction: String, Sendable, Equatable, CaseIterable {
    /// Deliver the message as it came, with the cause in the headers (the default: never lose mail).
    case accept
    /// 451 4.7.5: the sender's MTA retries (a token that did not answer, a key still to be installed).
    case tempfail
    /// 550 5.7.5: refuse it.
    case reject
}

/// `DecryptionWeakCiphers`.
public enum WeakCipherChoice: String, Sendable, Equatable, CaseIterable {
    case refuse
    case accept
}

/// The decryption keys' values, kept together in `Configuration.decryption`.
public struct DecryptionSettings: Sendable, Equatable {
    /// `DecryptionTable`; nil: nothing is decrypted.
    public var table: DecryptionTable?
    /// `OnDecryptionError`.
    public var onError: DecryptionErrorAction = .accept
    /// `DecryptionWeakCiphers accept`.
    public var allowWeakCiphers: Bool = false
    /// `DecryptionMaxSize`.
    public var maximumSize: Int = 64 << 20

    public init(table: DecryptionTable? = nil) {
        self.table = table
    }
}
