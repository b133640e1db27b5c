// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME

/// Resource limits per milter process and per MTA connection (issue 11).
public struct LimitSettings: Sendable, Equatable {
    /// `MaxConnections`: open MTA connections beyond this many are told to try again at connect.
    public var maxConnections: Int = 1000
    /// `MilterTimeout`: seconds libmilter waits for the MTA's next packet (`smfi_settimeout`)
    /// before it drops a stalled connection.
    public var milterTimeout: Int = 600
    /// `MaxConcurrentMessages`: messages decided (signed, verified, encrypted) at once; the others
    /// wait for a place. 0: no limit.
    public var concurrentMessages: Int = LimitSettings.defaultConcurrentMessages
    /// Four per online CPU (at least 8): enough to keep the CPUs busy while some wait on a token,
    /// a revocation responder or the store.
    public static let defaultConcurrentMessages = max(8, 4 * sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    /// `MaxMIMEDepth`: nesting of entities in mail the milter verifies (multiparts, message/rfc822).
    public var mimeDepth: Int = 32
    /// `MaxMIMEParts`: entities in one message the milter verifies.
    public var mimeParts: Int = 1_000
    /// `MaxHeaderFields`: fields in any one header section of mail the milter verifies.
    public var headerFields: Int = 10_000
    /// `MaxSignatureCertificates`: certificates one SignedData may carry.
    public var signatureCertificates: Int = 50
    /// `MaxSigners`: SignerInfos of one SignedData that are checked.
    public var signers: Int = 8
    /// `DiagnosisDigestBudget`: digest computations the diagnosis of one broken signature may make.
    public var diagnosisDigests: Int = 96
    /// `DiagnosisTimeBudget`: milliseconds the diagnosis of one broken signature may take.
    public var diagnosisMilliseconds: Int = 200

    public init() {}
}

/// Keys for resource limits.
extension ConfigurationKey {
    static let limits: [ConfigurationKey] = [
        count("MaxConnections", default: 1000, range: 1...100_000, \.maxConnections,
              doc: "At most this many MTA connections are served at once; a connection beyond it gets a tempfail at connect (the MTA gives its own 4xx) with a log line, and the MTA keeps the mail and retries."),
        count("MilterTimeout", syntax: "SECONDS", default: 600, range: 1...86_400, \.milterTimeout,
              doc: "Seconds a connection may stay silent between two packets of the MTA (smfi_settimeout, and the milter's own watchdog: libmilter checks only every 600 s); past it the connection is shut down with a warning. Read at start, not on reload."),
        count("MaxConcurrentMessages", default: LimitSettings.defaultConcurrentMessages, shownDefault: "4 per CPU, at least 8",
              range: 0...100_000, \.concurrentMessages,
              doc: "At most this many messages are decided (signed, verified, encrypted) at once; at end-of-message the others wait for a place, holding only their spool file, and one that waits over 120 s is tempfailed (451 4.3.2, the MTA retries). Bounds the memory of many large messages ending together. 0: no limit."),
        count("MaxMIMEDepth", default: 32, range: 1...MIMELimits.depthCap, \.mimeDepth,
              doc: "Deepest nesting of MIME entities (multiparts and message/rfc822) in mail that is verified, harvested from or diagnosed; deeper mail gets smime=neutral with the reason. Outbound signing has its own bound (64)."),
        count("MaxMIMEParts", default: 1_000, range: 1...100_000, \.mimeParts,
              doc: "Most MIME entities in one message that is verified; more give smime=neutral with the reason."),
        count("MaxHeaderFields", default: 10_000, range: 1...10_000, \.headerFields,
              doc: "Most fields in one header section (of the message or of a MIME part) of mail that is verified; more give smime=neutral with the reason. The milter never collects more than 10000 fields of a message."),
        count("MaxSignatureCertificates", default: 50, range: 1...10_000, \.signatureCertificates,
              doc: "Most certificates one signature (SignedData) may carry; more give smime=permerror without decoding them."),
        count("MaxSigners", default: 8, range: 1...1_000, \.signers,
              doc: "Most SignerInfos of one signature that are checked; more give smime=permerror."),
        count("DiagnosisDigestBudget", default: 96, range: 0...100_000, \.diagnosisDigests,
              doc: "Digest computations the diagnosis of one broken signature may make (0: no diagnosis); when it runs out the result stays fail and the cause is unknown."),
        count("DiagnosisTimeBudget", default: 200, range: 1...60_000, \.diagnosisMilliseconds,
              doc: "Milliseconds the diagnosis of one broken signature may take; when they run out the result stays fail and the cause is unknown."),
    ]

    /// A key holding a whole number within `range`, stored in `LimitSettings`.
    private static func count(_ name: String, syntax: String = "COUNT", default value: Int, shownDefault: String? = nil,
                              range: ClosedRange<Int>, _ field: WritableKeyPath<LimitSettings, Int> & Sendable,
                              doc: String) -> ConfigurationKey {
        ConfigurationKey(
            name: name,
            syntax: syntax,
            defaultValue: shownDefault ?? String(value),
            doc: doc,
            apply: { text, _, config in
                guard let n = Int(text), range.contains(n) else {
                    throw ValueProblem("expected a whole number from \(range.lowerBound) to \(range.upperBound)")
                }
                config.limits[keyPath: field] = n
            },
            show: { String($0.limits[keyPath: field]) }
        )
    }
}
