// SPDX-License-Identifier: Apache-2.0
import MIME

/// Where a value being parsed came from, for resolving paths and reporting errors.
struct KeyContext: Sendable {
    /// The configuration file as named by the caller (for messages).
    let file: String
    /// The 1-based line of the key.
    let line: Int
    /// The absolute directory of the configuration file (for relative paths).
    let directory: String

    /// An error at this key's line with a message of its own (not "bad value for ...").
    func failure(_ message: String) -> ConfigurationError {
        ConfigurationError(file: file, line: line, message: message)
    }

    /// A path value resolved against the configuration file's directory.
    func path(_ value: String) throws -> String {
        try ValueParsers.path(value, relativeTo: directory)
    }

    /// The table file a key names (`value`, resolved against the configuration's directory),
    /// parsed; an unreadable file is an error at this key's line, a bad line an error at the
    /// table's own line.
    func table<Table: TableFile>(_ value: String, for key: String) throws -> Table {
        let path = try path(value)
        let contents: String
        do {
            contents = try TextFile.readText(path: path)
        } catch let problem as TextFile.ReadError {
            throw failure("\(key): \(problem.reason)")
        }
        return try Table.parse(contents: contents, file: path)
    }
}

/// One key of the configuration file: its name, documentation, parser and display.
///
/// `ConfigurationKey.all` is the single list of keys: the parser, `Configuration.describe()`,
/// the example configuration test and (later) the manual page are all driven by it, so a new key
/// is added here and nowhere else (plus its stored property in `Configuration`).
public struct ConfigurationKey: Sendable {
    /// The key as documented (matched case-insensitively).
    public let name: String
    /// The value syntax, e.g. `tempfail | accept`.
    public let syntax: String
    /// The default, in words or as a value.
    public let defaultValue: String
    /// One-line documentation.
    public let doc: String
    /// Parses `value` into `config`. Throws `ValueProblem` (reported as a bad value for this key)
    /// or `ConfigurationError` (reported as is: table files, unreadable files).
    let apply: @Sendable (_ value: String, _ context: KeyContext, _ config: inout Configuration) throws -> Void
    /// The effective value as it can be written in the file, or nil when unset.
    let show: @Sendable (Configuration) -> String?
    /// A secret value (a passphrase, say) is never repeated in error messages or by `describe()`.
    public var isSecret: Bool = false

    /// The key called `name` (case-insensitive), if any.
    public static func named(_ name: some StringProtocol) -> ConfigurationKey? {
        let lower = name.lowercased()
        return all.first { $0.name.lowercased() == lower }
    }

    /// Every key, in the order of the example configuration and of `describe()`.
    public static let all: [ConfigurationKey] = general + inboundPolicy + outbound + operations + tokens + encryption + certificateStore + decryption + lifecycle + limits

    /// The keys of the milter itself, signing and verifying.
    static let general: [ConfigurationKey] = [
        ConfigurationKey(
            name: "Socket",
            syntax: "inet:PORT@ADDRESS | inet:PORT | inet6:PORT@[ADDRESS] | unix:PATH | /PATH",
            defaultValue: "inet:8891@127.0.0.1",
            doc: "Where to listen for the MTA: inet:PORT@ADDRESS (IPv4; inet:PORT alone means every IPv4 address, as in OpenDKIM), inet6:PORT@[ADDRESS] (IPv6), or unix:PATH, local:PATH or an absolute path for a unix-domain socket; host names other than localhost are refused.",
            apply: { value, _, config in config.process.socket = try SocketSpec.parse(value) },
            show: { $0.process.socket.description }
        ),
        ConfigurationKey(
            name: "SocketMode",
            syntax: "OCTAL",
            defaultValue: "0660",
            doc: "Permission bits of a unix-domain socket (octal, at most 0777), set after it is created so the MTA's user can connect; ignored for inet sockets.",
            apply: { value, _, config in config.process.socketMode = try ValueParsers.octalMode(value) },
            show: { "0" + String($0.process.socketMode, radix: 8) }
        ),
        ConfigurationKey(
            name: "AllowedPeers",
            syntax: "ADDRESS[/PREFIX][, ...] | PATH | any",
            defaultValue: "127.0.0.0/8, ::1",
            doc: "Who may connect to an inet Socket, in the form of InternalHosts (inline or a file): a kernel filter on the listening socket drops every other peer before the milter sees it; required when Socket binds a wildcard or non-loopback address; any lets every peer connect (warned at each start); no effect on unix sockets.",
            apply: { value, context, config in config.process.allowedPeers = try AllowedPeers.parse(value, context: context) },
            show: { $0.process.allowedPeers?.description }
        ),
        ConfigurationKey(
            name: "UserID",
            syntax: "USER[:GROUP]",
            defaultValue: "none (keep the identity the milter was started with)",
            doc: "Account to switch to after opening the socket, as a name or number with an optional group; when started as root, set it.",
            apply: { value, _, config in config.process.userID = try UserSpec.parse(value) },
            show: { $0.process.userID?.description }
        ),
        ConfigurationKey(
            name: "PidFile",
            syntax: "PATH",
            defaultValue: "none",
            doc: "File to write the process id to at start-up (relative paths are relative to the configuration file's directory).",
            apply: { value, context, config in config.process.pidFile = try context.path(value) },
            show: { $0.process.pidFile }
        ),
        ConfigurationKey(
            name: "Mode",
            syntax: "s | v | sv",
            defaultValue: "sv",
            doc: "What the milter does: s signs outbound mail (from InternalHosts or SASL-authenticated clients), v verifies inbound mail, sv (or vs) does both.",
            apply: { value, _, config in config.mode = try OperatingMode.parse(value) },
            show: { $0.mode.description }
        ),
        ConfigurationKey(
            name: "AuthservID",
            syntax: "NAME",
            defaultValue: "the host name (gethostname)",
            doc: "The authserv-id naming this host in the Authentication-Results header fields it adds (RFC 8601); defaults to the host name, as in OpenDKIM.",
            apply: { value, _, config in config.authservID = try ValueParsers.authservID(value) },
            show: { $0.authservID }
        ),
        ConfigurationKey(
            name: "InternalHosts",
            syntax: "ADDRESS[/PREFIX][, ...] | PATH",
            defaultValue: "127.0.0.1, ::1",
            doc: "Clients whose mail is outbound and signed: IPv4/IPv6 addresses and CIDR networks separated by commas or blanks, or a file with one entry per line and # comments (a value starting with /, ./, ../ or file:); a leading ! excludes an entry and the most specific entry wins.",
            apply: { value, context, config in
                config.internalHosts = try NetworkList.setting(value, context: context, key: "InternalHosts")
            },
            show: { $0.internalHosts.description }
        ),
        ConfigurationKey(
            name: "CertificateDir",
            syntax: "PATH",
            defaultValue: "none (required when Mode includes s)",
            doc: "Directory holding the signing identities (certificate and private key files, or PKCS#12 files); required when Mode includes s.",
            apply: { value, context, config in config.certificateDir = try context.path(value) },
            show: { $0.certificateDir }
        ),
        ConfigurationKey(
            name: "SigningTable",
            syntax: "PATH",
            defaultValue: "none",
            doc: "File of rules choosing the identity and form per sender, one per line: PATTERN IDENTITY [detached|opaque] or PATTERN skip, with PATTERN user@domain, *@domain, *@*.domain or *; the first matching line wins.",
            apply: { value, context, config in
                config.signingTable = try context.table(value, for: "SigningTable") as SigningTable
            },
            show: { $0.signingTable?.file }
        ),
        ConfigurationKey(
            name: "SenderMap",
            syntax: "PATH",
            defaultValue: "none",
            doc: "File saying who may use which From address, one entry per line: ADDRESS-or-@DOMAIN LOGIN[,LOGIN...] (like Postfix's smtpd_sender_login_maps); names are SASL logins, or envelope senders for mail without SASL login.",
            apply: { value, context, config in
                config.senderMap = try context.table(value, for: "SenderMap") as SenderMap
            },
            show: { $0.senderMap?.file }
        ),
        ConfigurationKey(
            name: "TrustAnchors",
            syntax: "PATH",
            defaultValue: "none",
            doc: "File of CA certificates (PEM) trusted as roots when verifying signatures.",
            apply: { value, context, config in config.trustAnchors = try context.path(value) },
            show: { $0.trustAnchors }
        ),
        ConfigurationKey(
            name: "Digest",
            syntax: "sha256 | sha384 | sha512",
            defaultValue: "sha256",
            doc: "Message digest used in signatures; sha256 is understood by every S/MIME client.",
            apply: { value, _, config in config.digest = try ValueParsers.digest(value) },
            show: { $0.digest.rawValue }
        ),
        ConfigurationKey(
            name: "OnError",
            syntax: "tempfail | accept",
            defaultValue: "tempfail",
            doc: "What the MTA is told when a message cannot be processed: tempfail makes it retry later (nothing leaves unsigned by accident), accept passes the message on unchanged.",
            apply: { value, _, config in config.onError = try ValueParsers.choice(value, OnErrorAction.self) },
            show: { $0.onError.rawValue }
        ),
        ConfigurationKey(
            name: "LogLevel",
            syntax: "error | warning | notice | info | debug",
            defaultValue: "info",
            doc: "How much to log; each level includes the ones before it, and info logs one line per message.",
            apply: { value, _, config in config.process.logLevel = try ValueParsers.choice(value, LogLevel.self) },
            show: { $0.process.logLevel.rawValue }
        ),
    ]
}
