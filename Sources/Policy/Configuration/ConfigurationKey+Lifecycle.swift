// SPDX-License-Identifier: Apache-2.0
import SMIME

/// Keys for the certificate lifecycle: making keys and requests, enrolment at a CA (a program
/// or CMP), renewal (docs/lifecycle.md). Read by `smime-milter identity`; the milter ignores them.
extension ConfigurationKey {
    static let lifecycle: [ConfigurationKey] = [
        ConfigurationKey(
            name: "OnMissingIdentity",
            syntax: "unsigned | tempfail",
            defaultValue: "unsigned",
            doc: "Mail that originates here from a sender without an identity (no SigningTable: none names the From address; with one: the identity its line names is not loaded, e.g. removed by identity sync): unsigned sends it on unsigned with a log line, tempfail makes the MTA keep it (451 4.7.0) until an identity is installed. Senders the SigningTable does not list are never affected.",
            apply: { value, _, config in config.onMissingIdentity = try ValueParsers.choice(value, ExpiredCertificateAction.self) },
            show: { $0.onMissingIdentity.rawValue }
        ),
        ConfigurationKey(
            name: "EnrollCommand",
            syntax: "PROGRAM [ARGUMENTS]",
            defaultValue: "none",
            doc: "Enrol new identities by running this program (no shell; split on white space): the certificate request (PEM) on its standard input, the certificate chain (PEM) on its standard output, exit 0 on success; standard error is logged as the CA's answer. Used when CMPServer is not set.",
            apply: { value, _, config in config.lifecycle.enrollCommand = try ValueParsers.command(value) },
            show: { $0.lifecycle.enrollCommand }
        ),
        ConfigurationKey(
            name: "RevokeCommand",
            syntax: "PROGRAM [ARGUMENTS]",
            defaultValue: "none",
            doc: "Revoke a certificate by running this program: the certificate (PEM) on its standard input, the reason (superseded or cessationOfOperation) added as its last argument, exit 0 on success. Used when CMPServer is not set.",
            apply: { value, _, config in config.lifecycle.revokeCommand = try ValueParsers.command(value) },
            show: { $0.lifecycle.revokeCommand }
        ),
        ConfigurationKey(
            name: "EnrollTimeout",
            syntax: "SECONDS (1-3600)",
            defaultValue: "120",
            doc: "The longest one enrolment or revocation may take (EnrollCommand, RevokeCommand or a CMP transaction); a program still running then is killed.",
            apply: { value, _, config in
                guard let n = Int(value), (1...3600).contains(n) else { throw ValueProblem("expected a number of seconds from 1 to 3600") }
                config.lifecycle.enrollTimeout = n
            },
            show: { String($0.lifecycle.enrollTimeout) }
        ),
        ConfigurationKey(
            name: "CMPServer",
            syntax: "HOST:PORT",
            defaultValue: "none",
            doc: "Enrol and revoke over CMP (RFC 4210, lightweight profile RFC 9483) at this CA (plain HTTP; use a loopback address or a trusted network, the messages themselves are protected by CMPSecretFile or CMPClientCertificate).",
            apply: { value, _, config in
                guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]),
                      (1...65535).contains(port), colon != value.startIndex else {
                    throw ValueProblem("expected HOST:PORT")
                }
                config.lifecycle.cmpHost = String(value[..<colon])
                config.lifecycle.cmpPort = port
            },
            show: { config in config.lifecycle.cmpHost.map { "\($0):\(config.lifecycle.cmpPort)" } }
        ),
        ConfigurationKey(
            name: "CMPPath",
            syntax: "PATH",
            defaultValue: "pkix/",
            doc: "The HTTP path of the CA's CMP endpoint (EJBCA: ejbca/publicweb/cmp/ALIAS; RFC 9483: .well-known/cmp).",
            apply: { value, _, config in config.lifecycle.cmpPath = String(value.drop { $0 == "/" }) },
            show: { $0.lifecycle.cmpPath }
        ),
        ConfigurationKey(
            name: "CMPReference",
            syntax: "TEXT",
            defaultValue: "none",
            doc: "The reference value (senderKID) under which the CA knows the shared secret of CMPSecretFile.",
            apply: { value, _, config in config.lifecycle.cmpReference = value },
            show: { $0.lifecycle.cmpReference }
        ),
        ConfigurationKey(
            name: "CMPSecretFile",
            syntax: "PATH",
            defaultValue: "none",
            doc: "The file holding the CMP shared secret (one line, readable only by the user running smime-milter identity): messages are protected with it (password-based MAC).",
            apply: { value, context, config in config.lifecycle.cmpSecretFile = try context.path(value) },
            show: { $0.lifecycle.cmpSecretFile }
        ),
        ConfigurationKey(
            name: "CMPClientCertificate",
            syntax: "PATH",
            defaultValue: "none",
            doc: "A client certificate (PEM) that signs the CMP messages instead of a shared secret (with CMPClientKey); then a certification request (cr) is sent rather than an initial registration (ir).",
            apply: { value, context, config in config.lifecycle.cmpClientCertificate = try context.path(value) },
            show: { $0.lifecycle.cmpClientCertificate }
        ),
        ConfigurationKey(
            name: "CMPClientKey",
            syntax: "PATH",
            defaultValue: "none",
            doc: "The private key (PEM, mode 0600) of CMPClientCertificate.",
            apply: { value, context, config in config.lifecycle.cmpClientKey = try context.path(value) },
            show: { $0.lifecycle.cmpClientKey }
        ),
        ConfigurationKey(
            name: "CMPTrustAnchors",
            syntax: "PATH",
            defaultValue: "none",
            doc: "CA certificates (PEM file) trusted for the CA's signature on its CMP answers, when they are signed rather than protected by the shared secret.",
            apply: { value, context, config in config.lifecycle.cmpTrustAnchors = try context.path(value) },
            show: { $0.lifecycle.cmpTrustAnchors }
        ),
        ConfigurationKey(
            name: "KeyType",
            syntax: "rsa3072 | p256",
            defaultValue: "rsa3072",
            doc: "The kind of key made for a new or renewed identity: RSA 3072 bits, or ECDSA on P-256.",
            apply: { value, _, config in config.lifecycle.keyType = try ValueParsers.choice(value, NewKeyType.self) },
            show: { $0.lifecycle.keyType.rawValue }
        ),
        ConfigurationKey(
            name: "NewKeysOn",
            syntax: "file | pkcs11:token=LABEL",
            defaultValue: "file",
            doc: "Where new keys are made: file (NAME.key, mode 0600, in CertificateDir), or the PKCS#11 token with that label (made there by C_GenerateKeyPair through PKCS11Module, sensitive and never extractable; NAME.key holds its pkcs11: URI).",
            apply: { value, _, config in
                guard value == "file" || value.hasPrefix("pkcs11:") else { throw ValueProblem("expected file or a pkcs11: URI") }
                config.lifecycle.newKeysOn = value == "file" ? nil : value
            },
            show: { $0.lifecycle.newKeysOn ?? "file" }
        ),
        ConfigurationKey(
            name: "RenewBeforeDays",
            syntax: "DAYS (1-365)",
            defaultValue: "30",
            doc: "identity renew --due renews every identity whose certificate expires within this many days.",
            apply: { value, _, config in
                guard let n = Int(value), (1...365).contains(n) else { throw ValueProblem("expected a number of days from 1 to 365") }
                config.lifecycle.renewBeforeDays = n
            },
            show: { String($0.lifecycle.renewBeforeDays) }
        ),
        ConfigurationKey(
            name: "StateDirectory",
            syntax: "PATH",
            defaultValue: LifecycleSettings.defaultStateDirectory,
            doc: "Where smime-milter identity keeps its lock file (one enrolment or renewal at a time) and its state file (the last enrolment result of each identity, shown by certs).",
            apply: { value, context, config in config.lifecycle.stateDirectory = try context.path(value) },
            show: { $0.lifecycle.stateDirectory }
        ),
        ConfigurationKey(
            name: "IdentitySource",
            syntax: "ldap://HOST[:PORT]/BASE?ATTRIBUTE?SCOPE?(FILTER)",
            defaultValue: "none",
            doc: "The directory that says who has an identity (identity sync): an LDAP URL (RFC 4516) whose search gives the addresses in ATTRIBUTE (normally mail); an address that appears is enrolled, one that disappears stops signing at once and its certificate is revoked.",
            apply: { value, _, config in
                guard value.hasPrefix("ldap://") || value.hasPrefix("ldaps://") else { throw ValueProblem("expected an ldap:// or ldaps:// URL") }
                config.lifecycle.identitySource = value
            },
            show: { $0.lifecycle.identitySource }
        ),
        ConfigurationKey(
            name: "RecipientCertificateSource",
            syntax: "ldap://HOST[:PORT]/BASE?ATTRIBUTES?SCOPE?(FILTER)",
            defaultValue: "none",
            doc: "A directory that supplies recipients' certificates (certs --recipients sync): an LDAP URL whose search gives certificates in ATTRIBUTES (default userSMIMECertificate,userCertificate;binary), bound as IdentitySourceBindDN with IdentitySourceSecretFile. Each certificate is stored for the addresses it names with source ldap and checked at the moment of use like any other.",
            apply: { value, _, config in
                guard value.hasPrefix("ldap://") || value.hasPrefix("ldaps://") else { throw ValueProblem("expected an ldap:// or ldaps:// URL") }
                config.lifecycle.recipientCertificateSource = value
            },
            show: { $0.lifecycle.recipientCertificateSource }
        ),
        ConfigurationKey(
            name: "IdentitySourceBindDN",
            syntax: "DN",
            defaultValue: "none (anonymous)",
            doc: "The DN identity sync binds as (simple bind), with the password in IdentitySourceSecretFile.",
            apply: { value, _, config in config.lifecycle.identitySourceBindDN = value },
            show: { $0.lifecycle.identitySourceBindDN }
        ),
        ConfigurationKey(
            name: "IdentitySourceSecretFile",
            syntax: "PATH",
            defaultValue: "none",
            doc: "The file holding the password of IdentitySourceBindDN (one line, readable only by the user running identity sync).",
            apply: { value, context, config in config.lifecycle.identitySourceSecretFile = try context.path(value) },
            show: { $0.lifecycle.identitySourceSecretFile }
        ),
        ConfigurationKey(
            name: "KeyRetentionDays",
            syntax: "DAYS | never",
            defaultValue: "never",
            doc: "identity sync destroys the archived keys of a sender who left the directory this many days after they left; never keeps them, so that old mail stays readable.",
            apply: { value, _, config in
                if value == "never" { config.lifecycle.keyRetentionDays = nil; return }
                guard let n = Int(value), (0...36500).contains(n) else { throw ValueProblem("expected a number of days or never") }
                config.lifecycle.keyRetentionDays = n
            },
            show: { $0.lifecycle.keyRetentionDays.map(String.init) ?? "never" }
        ),
    ]
}

/// How identities are enrolled and renewed (`smime-milter identity`); see ConfigurationKey+Lifecycle.
public struct LifecycleSettings: Sendable, Equatable {
    /// `EnrollCommand`: the enrolment program, if any.
    public var enrollCommand: String?
    /// `RevokeCommand`: the revocation program, if any.
    public var revokeCommand: String?
    /// `EnrollTimeout`: seconds one enrolment may take.
    public var enrollTimeout: Int = 120
    /// `CMPServer`: the CA's CMP host and port, if CMP is used.
    public var cmpHost: String?
    public var cmpPort: Int = 0
    /// `CMPPath`: the CMP endpoint's HTTP path.
    public var cmpPath: String = "pkix/"
    /// `CMPReference`, `CMPSecretFile`: the shared secret and its name.
    public var cmpReference: String?
    public var cmpSecretFile: String?
    /// `CMPClientCertificate`, `CMPClientKey`: signature protection instead.
    public var cmpClientCertificate: String?
    public var cmpClientKey: String?
    /// `CMPTrustAnchors`: trusted for the CA's signed answers.
    public var cmpTrustAnchors: String?
    /// `KeyType`: the kind of new keys.
    public var keyType: NewKeyType = .rsa3072
    /// `NewKeysOn`: a pkcs11: URI when keys are to be made on a token; nil for files.
    public var newKeysOn: String?
    /// `RenewBeforeDays`: how early `renew --due` renews.
    public var renewBeforeDays: Int = 30
    /// `StateDirectory`: lock and state files.
    public var stateDirectory: String = LifecycleSettings.defaultStateDirectory
    /// `IdentitySource`, `IdentitySourceBindDN`, `IdentitySourceSecretFile`: the directory.
    public var identitySource: String?
    public var identitySourceBindDN: String?
    public var identitySourceSecretFile: String?
    /// `RecipientCertificateSource`: the directory of recipients' certificates, if any.
    public var recipientCertificateSource: String?
    /// `KeyRetentionDays`: days after a departure before archived keys are destroyed; nil never.
    public var keyRetentionDays: Int?
    /// The default `StateDirectory` (systemd's StateDirectory=smime-milter).
    public static let defaultStateDirectory = "/var/lib/smime-milter"

    /// Defaults.
    public init() {}
}
