// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SMIME

/// The milter's settings, read from an OpenDKIM-style configuration file: the per-message rules
/// (mode, tables, identities, actions), and in `process` the settings of the process itself.
///
/// Every property holds its effective value (the default when the file does not set it).
/// Paths are absolute: relative paths in the file are resolved against the file's directory.
/// See `ConfigurationKey.all` for the keys and their documentation, and `ConfigurationParser`
/// for reading a file.
public struct Configuration: Sendable, Equatable {
    /// The configuration file this was read from (kept for reloading and messages).
    public var sourceFile: String
    /// Where the process listens, as whom, where it logs: read at start only.
    public var process: ProcessSettings
    /// `Mode`: sign, verify or both.
    public var mode: OperatingMode
    /// `AuthservID`: the authserv-id in Authentication-Results fields.
    public var authservID: String
    /// `InternalHosts`: clients whose mail is outbound (signed).
    public var internalHosts: NetworkList
    /// `CertificateDir`: the signing identities (certificates and keys).
    public var certificateDir: String?
    /// `SigningTable`: which identity signs for which sender, if configured.
    public var signingTable: SigningTable?
    /// `SenderMap`: who may use which From address, if configured.
    public var senderMap: SenderMap?
    /// `TrustAnchors`: CA certificates trusted when verifying, if configured.
    public var trustAnchors: String?
    /// `Digest`: the signature's message digest.
    public var digest: DigestAlgorithm
    /// `OnError`: what to tell the MTA when a message cannot be processed.
    public var onError: OnErrorAction
    /// `SubjectTagPass`: Subject prefix for mail whose signature passed; empty for none.
    public var subjectTagPass: String
    /// `SubjectTagFail`: Subject prefix for mail whose signature did not pass; empty for none.
    public var subjectTagFail: String
    /// `SubjectTagNone`: Subject prefix for unsigned mail; empty for none.
    public var subjectTagNone: String
    /// `RequireSignature`: senders known to sign everything, if configured.
    public var requireSignature: RequiredSigners?
    /// `OnMissingSignature`: what happens to mail from a required signer without a passing signature.
    public var onMissingSignature: MissingSignatureAction

    /// `CRLDir`: certificate revocation lists used when verifying, if any.
    public var crlDir: String?
    /// `AllowWeakAlgorithms`: let MD5/SHA-1 and short RSA keys pass verification.
    public var allowWeakAlgorithms: Bool = false
    /// `RevocationCheck`, `RevocationTimeout`, `HTTPProxy`, `RevocationCacheDir`.
    public var revocation = RevocationSettings()
    /// `OnRevocationUnknown`: what a signature gets whose certificates' status cannot be found.
    public var onRevocationUnknown: RevocationUnknownAction = .accept
    /// `SubjectTagPartial`: Subject prefix for mail with a valid signature over one part only.
    public var subjectTagPartial: String = ""
    /// `PartialSignatures`: what a valid signature over one part of the message gives.
    public var partialSignatures: PartialSignatureRule = .policy
    /// `HeaderProtection`: sign outbound mail with RFC 9788 header protection (`hp="clear"`).
    public var headerProtection: Bool = false

    // Outbound mail already signed by the client (see ConfigurationKey+Outbound.swift).
    /// `OnBrokenSignature`: the global action for broken client signatures; nil for the
    /// default rule (resign when an identity for the From address exists, else strip).
    public var onBrokenSignature: BrokenSignatureAction?
    /// `BrokenSignatureReport`: where to mail a report when a broken signature is stripped.
    public var brokenSignatureReport: String?

    // Operations (see ConfigurationKey+Operations.swift); defaults here, not in init.
    /// `ExpiryWarnDays`: days before a certificate's expiry at which to warn, descending.
    public var expiryWarnDays: [Int] = [30, 14, 7, 1]
    /// `ExpiryReport`: where to mail expiry warnings, if anywhere.
    public var expiryReport: String?
    /// `OnExpiredCertificate`: what happens to mail whose signing certificate has expired.
    public var onExpiredCertificate: ExpiredCertificateAction = .unsigned
    /// `SendmailCommand`: the local sendmail command used for report mail.
    public var sendmailCommand: String = "/usr/sbin/sendmail"
    /// `SpoolThreshold`: bodies larger than this many bytes are spooled to a file.
    public var spoolThreshold: Int = 8 << 20
    /// `SpoolDirectory`: the private directory of the spool files.
    public var spoolDirectory: String = Configuration.defaultSpoolDirectory
    /// `MaxConnections`, `MilterTimeout` (ConfigurationKey+Limits.swift).
    public var limits: LimitSettings = LimitSettings()
    /// `PKCS11Module`, `TokenPINFile`, `TokenSessions`: how keys on PKCS#11 tokens are reached.
    public var tokens: TokenSettings = TokenSettings()
    /// `OnMissingIdentity`: mail from a sender who should sign but has no identity (loaded).
    public var onMissingIdentity: ExpiredCertificateAction = .unsigned
    /// Enrolment and renewal (`smime-milter identity`; ConfigurationKey+Lifecycle.swift).
    public var lifecycle: LifecycleSettings = LifecycleSettings()
    /// The default `SpoolDirectory`.
    public static let defaultSpoolDirectory = "/var/tmp/smime-milter"

    // Encryption (see ConfigurationKey+Encryption.swift); defaults here, not in init.
    /// `EncryptionTable`; nil: nothing is encrypted.
    public var encryptionTable: EncryptionTable?
    /// `CertificateStore`.
    public var certificateStore: CertificateStoreSpec = .default
    /// `CertificateStorePasswordFile`, `CertificateStoreCAFile`, the pool, time budget, staleness
    /// and `OnStoreError` (ConfigurationKey+CertificateStore.swift).
    public var storeSettings: CertificateStoreSettings = CertificateStoreSettings()
    /// `RecipientCertificateDir`.
    public var recipientCertificateDir: String?
    /// `HarvestCertificates`.
    public var harvestCertificates: Bool = true
    /// `EncryptionCipher`.
    public var encryptionCipher: EncryptionCipherChoice = .auto
    /// `RSAKeyTransport`.
    public var rsaKeyTransport: RSAKeyTransportChoice = .pkcs1
    /// `ArchiveCertificate`.
    public var archiveCertificate: String?
    /// `OnMissingRecipientCertificate`.
    public var onMissingRecipientCertificate: MissingRecipientCertificateAction = .tempfail
    /// Inbound decryption (see ConfigurationKey+Decryption.swift).
    public var decryption: DecryptionSettings = DecryptionSettings()

    /// A configuration with the given values; every omitted value is the documented default.
    public init(
        sourceFile: String = "",
        socket: SocketSpec = .default,
        socketMode: UInt32 = 0o660,
        userID: UserSpec? = nil,
        pidFile: String? = nil,
        mode: OperatingMode = [.sign, .verify],
        authservID: String = Configuration.systemHostName(),
        internalHosts: NetworkList = .loopback,
        certificateDir: String? = nil,
        signingTable: SigningTable? = nil,
        senderMap: SenderMap? = nil,
        trustAnchors: String? = nil,
        digest: DigestAlgorithm = .sha256,
        onError: OnErrorAction = .tempfail,
        logLevel: LogLevel = .info,
        subjectTagPass: String = "",
        subjectTagFail: String = "",
        subjectTagNone: String = "",
        requireSignature: RequiredSigners? = nil,
        onMissingSignature: MissingSignatureAction = .tag
    ) {
        self.sourceFile = sourceFile
        self.process = ProcessSettings(socket: socket, socketMode: socketMode, userID: userID, pidFile: pidFile, logLevel: logLevel)
        self.mode = mode
        self.authservID = authservID
        self.internalHosts = internalHosts
        self.certificateDir = certificateDir
        self.signingTable = signingTable
        self.senderMap = senderMap
        self.trustAnchors = trustAnchors
        self.digest = digest
        self.onError = onError
        self.subjectTagPass = subjectTagPass
        self.subjectTagFail = subjectTagFail
        self.subjectTagNone = subjectTagNone
        self.requireSignature = requireSignature
        self.onMissingSignature = onMissingSignature
    }

    /// This host's name from gethostname(3), the default `AuthservID` (as in OpenDKIM);
    /// `localhost` if it cannot be read.
    public static func systemHostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }
}

/// The settings of the milter process rather than of a message: where it listens, as whom,
/// where and how much it logs, where it serves metrics. They are read at start; a reload that
/// changes one says that it takes effect only after a restart (`changedKeys`). The policy never
/// reads them.
public struct ProcessSettings: Sendable, Equatable {
    /// `Socket`: where to listen.
    public var socket: SocketSpec
    /// `SocketMode`: permission bits of a unix socket.
    public var socketMode: UInt32
    /// `AllowedPeers`: who may connect to an inet socket; nil when not set (loopback only).
    public var allowedPeers: AllowedPeers? = nil
    /// `UserID`: the account to switch to after opening the socket, if any.
    public var userID: UserSpec?
    /// `PidFile`: where to write the process id, if anywhere.
    public var pidFile: String?
    /// `LogLevel`: how much to log.
    public var logLevel: LogLevel
    /// `Syslog`: log through syslog(3) instead of standard error.
    public var syslog: Bool = false
    /// `SyslogFacility`: the syslog facility.
    public var syslogFacility: SyslogFacility = .mail
    /// `MetricsListen`: where to serve Prometheus metrics, if anywhere.
    public var metricsListen: MetricsEndpoint?

    /// Settings with the given values; every omitted value is the documented default.
    public init(socket: SocketSpec = .default, socketMode: UInt32 = 0o660, userID: UserSpec? = nil,
                pidFile: String? = nil, logLevel: LogLevel = .info) {
        self.socket = socket
        self.socketMode = socketMode
        self.userID = userID
        self.pidFile = pidFile
        self.logLevel = logLevel
    }

    /// The keys whose values differ in `other`, in the order of the configuration file.
    public func changedKeys(to other: ProcessSettings) -> [String] {
        let differences: [(String, Bool)] = [
            ("Socket", socket != other.socket), ("SocketMode", socketMode != other.socketMode),
            ("AllowedPeers", allowedPeers != other.allowedPeers),
            ("UserID", userID != other.userID), ("PidFile", pidFile != other.pidFile),
            ("LogLevel", logLevel != other.logLevel), ("Syslog", syslog != other.syslog),
            ("SyslogFacility", syslogFacility != other.syslogFacility), ("MetricsListen", metricsListen != other.metricsListen),
        ]
        return differences.filter(\.1).map(\.0)
    }
}
