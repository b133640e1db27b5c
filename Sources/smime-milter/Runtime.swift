// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
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

    /// `openingStore` false: the recipient certificate store is left alone (check-config and
    /// certs report on it themselves, without making the file).
    static func load(configPath: String, now: Date = Date(), openingStore: Bool = true) throws -> LoadedSetup {
        let configuration = try ConfigurationParser.load(path: configPath)
        var problems: [String] = []
        let identities: IdentityStore
        if let dir = configuration.certificateDir {
            if let problem = configuration.tokens.apply() { problems.append(problem) }
            identities = IdentityStore.load(directory: dir, now: now, tokens: configuration.tokens)
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
        return LoadedSetup(
            configuration: configuration, identities: identities, signingPolicy: signing,
            policy: MessagePolicy(signing: signing, verification: verification, encryption: encryption),
            problems: problems)
    }

    /// The signature verifier for `configuration`: nil when Mode has no v or no TrustAnchors
    /// are configured (inbound mail is then left alone, and its log line says why), or when the
    /// trust anchors cannot be read (a problem).
    static func makeVerifier(_ configuration: Configuration, problems: inout [String]) -> (any SignatureVerifier)? {
        guard configuration.mode.contains(.verify), let anchors = configuration.trustAnchors else { return nil }
        do {
            let store = try TrustStore(anchors: [anchors], crlDirectory: configuration.crlDir)
            problems += store.problems.map { "TrustAnchors: \($0)" }
            return MessageVerifier(trust: store, options: configuration.verificationOptions())
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
