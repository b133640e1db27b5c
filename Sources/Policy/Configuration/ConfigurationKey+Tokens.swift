// SPDX-License-Identifier: Apache-2.0
import SMIME

/// Keys for signing identities whose private key stays on a PKCS#11 token (docs/hsm.md).
extension ConfigurationKey {
    static let tokens: [ConfigurationKey] = [
        ConfigurationKey(
            name: "PKCS11Module",
            syntax: "PATH",
            defaultValue: "p11-kit-proxy.so",
            doc: "The PKCS#11 module for identities whose NAME.key holds a pkcs11: URI; the default, p11-kit's proxy, offers every module registered with p11-kit (SoftHSM, OpenSC); a change takes effect after a restart.",
            apply: { value, context, config in config.tokens.modulePath = try context.path(value) },
            show: { $0.tokens.modulePath }
        ),
        ConfigurationKey(
            name: "TokenPINFile",
            syntax: "PATH | credential:NAME",
            defaultValue: "none",
            doc: "The file holding the token PIN (one line, readable only by the milter's user), or credential:NAME for the systemd credential NAME in $CREDENTIALS_DIRECTORY; the PIN is never written in this file and never logged.",
            apply: { value, context, config in
                config.tokens.pinFile = value.hasPrefix("credential:") ? value : try context.path(value)
            },
            show: { $0.tokens.pinFile }
        ),
        ConfigurationKey(
            name: "TokenSessions",
            syntax: "N (1-64)",
            defaultValue: "4",
            doc: "At most this many signatures are made on the token at once, each in a session of its own (tokens limit sessions); more messages wait, up to 30 s, then are tempfailed.",
            apply: { value, _, config in
                guard let n = Int(value), (1...64).contains(n) else { throw ValueProblem("expected a number from 1 to 64") }
                config.tokens.sessions = n
            },
            show: { String($0.tokens.sessions) }
        ),
    ]
}
