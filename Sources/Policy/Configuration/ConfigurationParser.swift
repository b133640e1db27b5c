// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME

/// Reads the OpenDKIM-style configuration file.
///
/// Format: one `Key value` per line (the key is the first word, the value the rest of the line),
/// keys case-insensitive, `#` starts a comment, blank lines ignored, LF or CRLF line ends.
/// Unknown keys, bad values and keys given twice are errors located at `FILE:LINE`; errors in
/// a table file the configuration refers to are located in that table file.
public enum ConfigurationParser {
    /// Configuration files larger than this are refused.
    public static let maximumFileSize = 1 << 20

    /// Reads and parses the configuration file at `path`, including the table files it names.
    public static func load(path: String) throws -> Configuration {
        let contents: String
        do {
            contents = try TextFile.readText(path: path, maximumSize: maximumFileSize)
        } catch let problem as TextFile.ReadError {
            throw ConfigurationError(file: path, line: nil, message: problem.reason)
        }
        return try parse(contents: contents, file: path)
    }

    /// Parses configuration text that came from `file`; throws the first error.
    ///
    /// `file` names the text in error messages and is the base for relative paths in it (its
    /// directory, resolved against the current directory when relative). The table files the
    /// text names (`SigningTable`, `SenderMap`, an `InternalHosts` file) are read and parsed.
    public static func parse(contents: String, file: String) throws -> Configuration {
        let read = collect(contents: contents, file: file)
        if let first = read.errors.first { throw first }
        return read.configuration
    }

    /// Reads the configuration file at `path` for serving (`run`, `check-config`): every error
    /// in it (in the order found), not only the first, plus the rules on who can reach the socket
    /// (a wildcard bind needs `AllowedPeers`, a unix socket must not be writable by others)
    /// and warnings that do not stop the milter.
    public static func review(path: String) -> ConfigurationReview {
        let contents: String
        do {
            contents = try TextFile.readText(path: path, maximumSize: maximumFileSize)
        } catch let problem as ValueProblem {
            return ConfigurationReview(configuration: Configuration(sourceFile: path),
                                       errors: [ConfigurationError(file: path, line: nil, message: problem.reason)], warnings: [])
        } catch {
            return ConfigurationReview(configuration: Configuration(sourceFile: path),
                                       errors: [ConfigurationError(file: path, line: nil, message: "\(error)")], warnings: [])
        }
        return review(contents: contents, file: path)
    }

    /// `review(path:)` for text that came from `file`.
    public static func review(contents: String, file: String) -> ConfigurationReview {
        let read = collect(contents: contents, file: file)
        let serving = read.failedKeys.isDisjoint(with: ["Socket", "SocketMode", "AllowedPeers", "MetricsListen"])
            ? servingRules(read.configuration, file: file, lines: read.lines) : (errors: [], warnings: [])
        // A rule's error goes where its key's line is, among the errors of the same file.
        var errors = read.errors
        for error in serving.errors {
            let at = errors.firstIndex { $0.file == error.file && ($0.line ?? Int.max) > (error.line ?? Int.max) } ?? errors.endIndex
            errors.insert(error, at: at)
        }
        return ConfigurationReview(configuration: read.configuration, errors: errors, warnings: serving.warnings,
                                   keyLines: read.lines)
    }

    /// Parses every line, collecting the errors instead of stopping at the first.
    private static func collect(contents: String, file: String)
        -> (configuration: Configuration, errors: [ConfigurationError], lines: [String: Int], failedKeys: Set<String>) {
        let sourcePath = ValueParsers.resolve(file, against: FileManager.default.currentDirectoryPath)
        let directory = (sourcePath as NSString).deletingLastPathComponent
        var config = Configuration(sourceFile: sourcePath)
        var seen: [String: Int] = [:]
        var errors: [ConfigurationError] = []
        var failed: Set<String> = []
        for line in meaningfulLines(of: contents) {
            let keyEnd = line.text.firstIndex(where: isBlank) ?? line.text.endIndex
            let keyText = line.text[..<keyEnd]
            let value = String(trimBlanks(line.text[keyEnd...]))
            guard let key = ConfigurationKey.named(keyText) else {
                errors.append(ConfigurationError(file: file, line: line.number, message: unknownKeyMessage(keyText)))
                continue
            }
            if let earlier = seen[key.name] {
                errors.append(ConfigurationError(file: file, line: line.number,
                                                 message: "duplicate key \(key.name) (already set on line \(earlier))"))
                continue
            }
            seen[key.name] = line.number
            guard !value.isEmpty else {
                errors.append(ConfigurationError(file: file, line: line.number, message: "missing value for \(key.name)"))
                failed.insert(key.name)
                continue
            }
            let context = KeyContext(file: file, line: line.number, directory: directory)
            do {
                try key.apply(value, context, &config)
            } catch let problem as ValueProblem {
                let shown = key.isSecret ? "" : ": " + quoted(value)
                errors.append(ConfigurationError(file: file, line: line.number,
                                                 message: "bad value for \(key.name)\(shown) (\(problem.reason))"))
                failed.insert(key.name)
            } catch let error as ConfigurationError {
                errors.append(error)
                failed.insert(key.name)
            } catch {
                errors.append(ConfigurationError(file: file, line: line.number, message: "\(key.name): \(error)"))
                failed.insert(key.name)
            }
        }
        // A rule between keys is not checked when one of its keys was already at fault.
        if failed.isDisjoint(with: ["Mode", "CertificateDir"]), let error = checkConsistency(config, file: file, lines: seen) {
            errors.append(error)
        }
        return (config, errors, seen, failed)
    }

    /// Rules that involve more than one key.
    private static func checkConsistency(_ config: Configuration, file: String, lines: [String: Int]) -> ConfigurationError? {
        if config.mode.contains(.sign), config.certificateDir == nil {
            let why = lines["Mode"] == nil ? "the default Mode sv includes s (sign)" : "Mode includes s (sign)"
            return ConfigurationError(file: file, line: lines["Mode"],
                                      message: "CertificateDir is required: \(why)")
        }
        return nil
    }

    /// `unknown key "X"`, with a suggestion when X is close to a known key.
    private static func unknownKeyMessage(_ key: Substring) -> String {
        var message = "unknown key \(quoted(key))"
        if key.contains("=") || key.contains(":") {
            message += " (write Key value, separated by blanks)"
        } else if let suggestion = closestKey(to: key) {
            message += " (did you mean \(suggestion)?)"
        }
        return message
    }

    /// The known key within edit distance 2 of `key`, if one is.
    private static func closestKey(to key: Substring) -> String? {
        let lower = Array(key.lowercased())
        guard lower.count <= 64 else { return nil }
        var best: (name: String, distance: Int)?
        for candidate in ConfigurationKey.all {
            let distance = editDistance(lower, Array(candidate.name.lowercased()))
            if distance <= 2, distance < (best?.distance ?? Int.max) {
                best = (candidate.name, distance)
            }
        }
        return best?.name
    }

    /// Levenshtein distance counting an adjacent transposition as one edit.
    private static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}

/// A configuration read for serving, with every error and warning found in it.
public struct ConfigurationReview: Sendable {
    /// The configuration as far as it could be read (keys with errors keep their defaults).
    public let configuration: Configuration
    /// Every error, in line order; the configuration must not be used when there is one.
    public let errors: [ConfigurationError]
    /// Problems that do not stop the milter but are logged at every start.
    public let warnings: [String]
    /// The line that set each key (by its documented name), for errors found later.
    public var keyLines: [String: Int] = [:]
}
