// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Policy
#if canImport(Glibc)
import Glibc
#endif

/// Logs through syslog(3) (`Syslog yes`), one record per line, with the configured facility.
struct SyslogLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Opens the log once; the identifier string must outlive every syslog call.
    static func open(facility: SyslogFacility) {
        openlog(identifier, LOG_PID | LOG_NDELAY, facility.code)
    }

    /// Never freed and never written after creation, so sharing it between threads is safe.
    nonisolated(unsafe) private static let identifier: UnsafeMutablePointer<CChar> = strdup("smime-milter")

    func log(event: LogEvent) {
        let priority: Int32
        switch event.level {
        case .trace, .debug: priority = LOG_DEBUG
        case .info: priority = LOG_INFO
        case .notice: priority = LOG_NOTICE
        case .warning: priority = LOG_WARNING
        case .error: priority = LOG_ERR
        case .critical: priority = LOG_CRIT
        }
        // Never pass the message as the format: it may contain '%'.
        "\(event.message)".withCString { c in withVaList([c]) { vsyslog(priority, "%s", $0) } }
    }
}

extension SyslogFacility {
    var code: Int32 {
        switch self {
        case .mail: return LOG_MAIL
        case .daemon: return LOG_DAEMON
        case .user: return LOG_USER
        case .local0: return LOG_LOCAL0
        case .local1: return LOG_LOCAL1
        case .local2: return LOG_LOCAL2
        case .local3: return LOG_LOCAL3
        case .local4: return LOG_LOCAL4
        case .local5: return LOG_LOCAL5
        case .local6: return LOG_LOCAL6
        case .local7: return LOG_LOCAL7
        }
    }
}
