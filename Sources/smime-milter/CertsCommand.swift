// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Policy
import SMIME

/// `smime-milter certs`: every identity with its addresses, issuer, algorithm, expiry and
/// whether it would be used now. Exit 1 when any expires within the warning window.
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "List the signing identities and their expiry; exit 1 if any expires within ExpiryWarnDays.",
        discussion: """
            With --recipients, work on the recipient certificates in the configured CertificateStore instead:
              certs --recipients [list]          every address, its current certificate and whether it is usable now
              certs --recipients import FILE     a PEM certificate (then its intermediates) for every address it names
              certs --recipients remove ADDRESS  forget the address's certificates (current and history)
              certs --recipients export ADDRESS  print the current certificate and its intermediates as PEM
              certs --recipients history ADDRESS every certificate kept for the address, newest first
              certs --recipients log             the latest harvest decisions
              certs --recipients sync            store the certificates RecipientCertificateSource (LDAP) holds
            """)

    @OptionGroup var options: ConfigOption

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Flag(help: "Work on the recipient certificate store (see below).")
    var recipients = false

    @Argument(help: "With --recipients: list | import FILE | remove ADDRESS | export ADDRESS | history ADDRESS | log | sync.")
    var action: [String] = []

    func validate() throws {
        if !recipients && !action.isEmpty { throw ValidationError("\(action[0]): actions need --recipients") }
    }

    func run() throws {
        if recipients {
            throw ExitCode(RecipientCerts.run(configPath: options.config, action: action, json: json))
        }
        let setup: LoadedSetup
        do {
            setup = try LoadedSetup.load(configPath: options.config, openingStore: false)
        } catch {
            FileHandle.standardError.write(Data("smime-milter: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let statuses = CertificateExpiry.statuses(identities: setup.identities, configuration: setup.configuration)
        let window = setup.configuration.expiryWarnDays.max() ?? 0
        // Identities whose key is on a token: whether the token answers now.
        var tokens: [String: (uri: String, problem: String?)] = [:]
        for identity in setup.identities.identities {
            if let token = identity.tokenKey { tokens[identity.name] = ("\(token.uri)", token.probe()) }
        }
        let lifecycle = LifecycleColumns(configuration: setup.configuration)
        if json {
            print(Self.json(statuses, window: window, tokens: tokens, revocation: setup.identityRevocation, lifecycle: lifecycle))
        } else {
            print(Self.table(statuses, tokens: tokens, lifecycle: lifecycle))
            // Revoked identities are refused at load (not in the table); every checked one is listed.
            for (name, status) in setup.identityRevocation.sorted(by: { $0.key < $1.key }) {
                print("# \(name): revocation " + (status.certificates.first?.line ?? "not checked"))
            }
        }
        if setup.identityRevocation.values.contains(where: { $0.revoked != nil }) { throw ExitCode(1) }
        if statuses.contains(where: { $0.daysLeft <= window }) { throw ExitCode(1) }
    }

    static func table(_ statuses: [CertificateStatus], tokens: [String: (uri: String, problem: String?)] = [:],
                      lifecycle: LifecycleColumns? = nil) -> String {
        let iso = ISO8601DateFormatter()
        var lines = ["IDENTITY\tDAYS\tNOT-AFTER\tKEY\tUSED\tADDRESSES\tISSUER"
                     + (lifecycle == nil ? "" : "\tSOURCE\tNEXT-RENEWAL\tLAST-ENROLMENT")]
        for s in statuses {
            let used = s.usedNow ? "yes" : "no (\(s.note ?? ""))"
            var key = s.keyDescription
            if let token = tokens[s.name] {
                key += token.problem == nil ? " on token (answers)" : " on token (DOES NOT ANSWER)"
            }
            var columns = [s.name, String(s.daysLeft), iso.string(from: s.notAfter), key, used,
                           s.addresses.joined(separator: ","), s.issuer]
            if let lifecycle {
                let row = lifecycle.row(name: s.name, notAfter: s.notAfter)
                columns += [row.source, row.nextRenewal.map { iso.string(from: $0) } ?? "-", row.lastText]
            }
            lines.append(columns.joined(separator: "\t"))
        }
        for (name, token) in tokens.sorted(by: { $0.key < $1.key }) {
            lines.append("# \(name): key \(token.uri)" + (token.problem.map { ": \($0)" } ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ statuses: [CertificateStatus], window: Int,
                     tokens: [String: (uri: String, problem: String?)] = [:],
                     revocation: [String: ChainRevocation] = [:], lifecycle: LifecycleColumns? = nil) -> String {
        let iso = ISO8601DateFormatter()
        let items: [[String: Any]] = statuses.map { s in
            var item: [String: Any] = [
                "identity": s.name, "addresses": s.addresses, "issuer": s.issuer, "key": s.keyDescription,
                "not_after": iso.string(from: s.notAfter), "not_after_unix": Int(s.notAfter.timeIntervalSince1970),
                "days_left": s.daysLeft, "used_now": s.usedNow, "expires_within_warning_window": s.daysLeft <= window,
            ]
            if let note = s.note { item["note"] = note }
            if let lifecycle {
                let row = lifecycle.row(name: s.name, notAfter: s.notAfter)
                item["source"] = row.source
                if let next = row.nextRenewal { item["next_renewal"] = iso.string(from: next) }
                if let last = row.last {
                    item["last_enrolment"] = ["time": iso.string(from: last.time), "ok": last.ok, "result": last.message,
                                              "ca": last.backend] as [String: Any]
                }
            }
            if let t = s.warningThreshold { item["warning_threshold_days"] = t }
            if let token = tokens[s.name] {
                item["token_uri"] = token.uri
                item["token_answers"] = token.problem == nil
                if let problem = token.problem { item["token_problem"] = problem }
            }
            if let checked = revocation[s.name]?.certificates.first {
                item["revocation"] = checked.status.keyword
                item["revocation_source"] = checked.source
            }
            return item
        }
        let revoked: [[String: Any]] = revocation.sorted(by: { $0.key < $1.key }).compactMap { name, status in
            guard let reason = status.revokedReason else { return nil }
            return ["identity": name, "revocation": "revoked", "reason": reason]
        }
        let data = (try? JSONSerialization.data(withJSONObject: ["identities": items, "revoked_identities": revoked], options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// The lifecycle columns of `certs`: where an identity came from (the file of an operator,
/// `identity new`, the directory), when `identity renew --due` will renew it, and the last
/// enrolment result recorded in StateDirectory.
struct LifecycleColumns {
    let states: [String: LifecycleState.Result]
    let renewBeforeDays: Int
    let hasCA: Bool

    init(configuration: Configuration) {
        states = LifecycleState(directory: configuration.lifecycle.stateDirectory).read()
        renewBeforeDays = configuration.lifecycle.renewBeforeDays
        hasCA = configuration.lifecycle.enrollCommand != nil || configuration.lifecycle.cmpHost != nil
    }

    struct Row {
        var source: String
        var nextRenewal: Date?
        var last: LifecycleState.Result?
        var lastText: String {
            guard let last else { return "-" }
            return "\(ISO8601DateFormatter().string(from: last.time)) \(last.ok ? "ok" : "FAILED"): \(last.message)"
        }
    }

    func row(name: String, notAfter: Date) -> Row {
        let last = states[name]
        let renewed = hasCA && CertificateRequest.isPlainMailbox(name)
        return Row(source: last?.source ?? "file",
                   nextRenewal: renewed ? notAfter.addingTimeInterval(-TimeInterval(renewBeforeDays) * 86_400) : nil,
                   last: last)
    }
}
