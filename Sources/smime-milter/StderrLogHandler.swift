// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Policy

/// Writes one line per log record to standard error: `smime-milter[PID]: level: message`.
/// Under systemd the journal adds the time; each record is one write(2), so lines from
/// concurrent libmilter threads do not interleave.
struct StderrLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    private let prefix = "smime-milter[\(ProcessInfo.processInfo.processIdentifier)]"

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let line = "\(prefix): \(event.level): \(event.message)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

enum Log {
    /// Sets up swift-log once, at the configured level.
    static func bootstrap(level: Logger.Level, syslogFacility: SyslogFacility? = nil) -> Logger {
        if let syslogFacility {
            SyslogLogHandler.open(facility: syslogFacility)
            LoggingSystem.bootstrap { _ in
                var h = SyslogLogHandler()
                h.logLevel = level
                return h
            }
        } else {
            LoggingSystem.bootstrap { _ in
                var h = StderrLogHandler()
                h.logLevel = level
                return h
            }
        }
        var logger = Logger(label: "smime-milter")
        logger.logLevel = level
        return logger
    }
}
