// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Milter
import Policy
import SMIME

/// A configuration with its identities loaded: everything the policy needs, checked.
struct LoadedSetup {
    let configuration: Configuration
    let identities: IdentityStore
    /// The signing decision alone (the offline `sign` command).
    let signingPolicy: SigningPolicy
    /// The milter's decision: signing for mail originating here, verification for the rest.
    let policy: MessagePolicy
    /// Problems that do not stop the milter but an administrator must see (refused identities,
    /// SigningTable lines naming identities that did not load).
    let problems: [String]
    /// The revocation status of each identity's certificate (by name), when RevocationCheck is
    /// set; revoked ones are not in `identities`.
    var identityRevocation: [String: ChainRevocation] = [:]

    /// `openingStore` false: the recipient certificate store is left alone (check-config and
    /// certs report on it themselves, without making the file).
    static func load(configPath: String, now: Date = Date(), openingStore: Bool = true) throws -> LoadedSetup {
        let configuration = try ConfigurationParser.load(path: configPath)
        var problems: [String] = []
        var identities: IdentityStore
        var identityRevocation: [String: ChainRevocation] = [:]
        var allIdentities = IdentityStore(identities: [])
        if let dir = configuration.certificateDir {
            if let problem = configuration.tokens.apply() { problems.append(problem) }
            identities = IdentityStore.load(directory: dir, now: now, tokens: configuration.tokens)
            allIdentities = identities
            // A revoked identity of ours must not sign: it is refused like any unusable one.
            if let checker = RevocationRuntime.checker(configuration, trust: nil) {
                var revoked: [String: String] = [:]
                for identity in identities.identities {
                    let status = checker.check(identity: identity)
                    identityRevocation[identity.name] = status
                    if let reason = status.revokedReason { revoked[identity.name] = reason }
                }
                identities = identities.removing(revoked: revoked)
            }
            for problem in identities.rejected {
                problems.append("identity refused: \(problem)")
            }
        } else {
            identities = IdentityStore(identities: [])
        }
        if let table = configuration.signingTable {
            let named = Set(table.rules.compactMap { rule -> String? in
                if case let .sign(identity, _) = rule.entry { return identity }
                return nil
            })
            for name in named.sorted() where identities.identity(named: name) == nil {
                // An expired identity is already reported as refused, with its date.
                if identities.expiredIdentity(named: name) != nil { continue }
                problems.append("SigningTable names identity \"\(name)\", which is not loaded")
            }
        }
        let verifier = makeVerifier(configuration, problems: &problems)
        let signing = SigningPolicy(
            configuration: configuration, identities: identities,
            integrityVerifier: makeIntegrityVerifier(configuration, inbound: verifier, problems: &problems))
        let verification = verifier.map { VerificationPolicy(configuration: configuration, verifier: $0) }
        let encryption = openingStore ? try makeEncryption(configuration, now: now, problems: &problems) : nil
        var setup = LoadedSetup(
            configuration: configuration, identities: identities, signingPolicy: signing,
            policy: MessagePolicy(signing: signing, verification: verification, encryption: encryption,
                                  decryption: makeDecryption(configuration, identities: allIdentities, now: now, problems: &problems)),
            problems: problems)
        setup.identityRevocation = identityRevocation
        return setup
    }

    /// The signature verifier for `configuration`: nil when Mode has no v or no TrustAnchors
    /// are configured (inbound mail is then left alone, and its log line says why), or when the
    /// trust anchors cannot be read (a problem).
    static func makeVerifier(_ configuration: Configuration, problems: inout [String]) -> (any SignatureVerifier)? {
        guard configuration.mode.contains(.verify), let anchors = configuration.trustAnchors else { return nil }
        do {
            let store = try TrustStore(anchors: [anchors], crlDirectory: configuration.crlDir)
            problems += store.problems.map { "TrustAnchors: \($0)" }
            return MessageVerifier(trust: store, options: configuration.verificationOptions(),
                                   revocation: RevocationRuntime.checker(configuration, trust: store))
        } catch {
            problems.append("TrustAnchors \(anchors): \(error); inbound mail is not verified")
            return nil
        }
    }
}

extension LoadedSetup {
    /// The verifier that checks whether a client's signature on outbound mail is intact: the
    /// inbound verifier when there is one (same bounds; trust does not matter for integrity),
    /// else one with an empty trust store, so the check works without TrustAnchors.
    static func makeIntegrityVerifier(_ configuration: Configuration, inbound: (any SignatureVerifier)?,
                                      problems: inout [String]) -> (any SignatureVerifier)? {
        guard configuration.mode.contains(.sign) else { return nil }
        if let inbound { return inbound }
        do {
            return MessageVerifier(
                trust: try TrustStore.empty(),
                options: configuration.verificationOptions())
        } catch {
            problems.append("cannot check client signatures on outbound mail: \(error); such mail is left alone")
            return nil
        }
    }
}

extension Logger.Level {
    init(configured level: LogLevel) {
        switch level {
        case .error: self = .error
        case .warning: self = .warning
        case .notice: self = .notice
        case .info: self = .info
        case .debug: self = .debug
        }
    }
}

/// Every error of a configuration refused for serving, one `FILE:LINE: message` per line.
struct ConfigurationRefused: Error, CustomStringConvertible {
    let errors: [ConfigurationError]
    var description: String { errors.map(\.description).joined(separator: "\n") }
}

extension LoadedSetup {
    /// The setup for `run` (start and reload): the configuration must pass every rule of
    /// `ConfigurationParser.review` (all its errors are reported at once); its warnings are
    /// returned for the log. `atStart`: also what opening the socket would refuse.
    static func loadForServing(configPath: String, atStart: Bool = false) throws -> (setup: LoadedSetup, warnings: [String]) {
        let review = ConfigurationParser.review(path: configPath)
        guard review.errors.isEmpty else { throw ConfigurationRefused(errors: review.errors) }
        if atStart {
            let problems = socketProblems(review.configuration, file: configPath, lines: review.keyLines)
            guard problems.isEmpty else { throw ConfigurationRefused(errors: problems) }
        }
        return (try load(configPath: configPath), review.warnings)
    }

    /// What opening the socket would refuse: an AllowedPeers list too large for the kernel
    /// filter, a unix socket in a directory that others may write to. `lines` locates the keys.
    static func socketProblems(_ configuration: Configuration, file: String, lines: [String: Int]) -> [ConfigurationError] {
        switch configuration.process.socket {
        case .inet, .inet6:
            guard let peers = configuration.process.effectiveAllowedPeers else { return [] }
            do {
                _ = try PeerFilter.compile(peers)
                return []
            } catch {
                return [ConfigurationError(file: file, line: lines["AllowedPeers"], message: "\(error)")]
            }
        case let .unix(path):
            return UnixSocketCheck.directoryProblems(socketPath: path).map {
                ConfigurationError(file: file, line: lines["Socket"], message: $0)
            }
        }
    }
}

/// The process's revocation checkers: one cache per cache directory for the whole process, so
/// a reload keeps what was fetched, and the metrics as events.
enum RevocationRuntime {
    private static let caches = Locked<[String: RevocationCache]>([:])

    /// The checker for `configuration` over `trust` (an empty store for identities), or nil
    /// when RevocationCheck is none.
    static func checker(_ configuration: Configuration, trust: TrustStore?) -> RevocationChecker? {
        let settings = configuration.revocation
        guard !settings.methods.isEmpty, let store = trust ?? (try? TrustStore.empty()) else { return nil }
        // With a PostgreSQL CertificateStore the cache is shared there (RevocationCacheDir unused).
        let shared = StoreRuntime.sharedRevocationStore(configuration)
        let cache = caches.withLock { all in
            let key = shared == nil ? settings.cacheDirectory ?? "" : "\(configuration.certificateStore)"
            if let existing = all[key] { return existing }
            let made = RevocationCache(directory: settings.cacheDirectory, shared: shared)
            all[key] = made
            return made
        }
        return RevocationChecker(trust: store, settings: settings, cache: cache, events: MilterMetrics.revocationEvents)
    }
}
