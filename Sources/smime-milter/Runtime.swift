import Foundation
import Logging
import Policy
import SMIME

/// A configuration with its identities loaded: everything the policy needs, checked.
struct LoadedSetup {
    let configuration: Configuration
    let identities: IdentityStore
    let policy: SigningPolicy
    /// Problems that do not stop the milter but an administrator must see (refused identities,
    /// SigningTable lines naming identities that did not load).
    let problems: [String]

    static func load(configPath: String, now: Date = Date()) throws -> LoadedSetup {
        let configuration = try ConfigurationParser.load(path: configPath)
        var problems: [String] = []
        let identities: IdentityStore
        if let dir = configuration.certificateDir {
            identities = IdentityStore.load(directory: dir, now: now)
            for problem in identities.rejected {
                problems.append("identity refused: \(problem)")
            }
        } else {
            identities = IdentityStore(identities: [])
        }
        if let table = configuration.signingTable {
            for name in Set(table.rules.compactMap { rule -> String? in if case let .sign(identity, _) = rule.entry { return identity } else { return nil } }).sorted() where identities.identity(named: name) == nil {
                problems.append("SigningTable names identity \"\(name)\", which is not loaded")
            }
        }
        return LoadedSetup(
            configuration: configuration, identities: identities,
            policy: SigningPolicy(configuration: configuration, identities: identities),
            problems: problems)
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
