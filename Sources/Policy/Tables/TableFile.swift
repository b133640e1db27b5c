// SPDX-License-Identifier: Apache-2.0
import MIME

/// A file of lines that a configuration key names (SigningTable, SenderMap, InternalHosts,
/// RequireSignature): parsed from text with errors at the file's own lines, and read from disk
/// the same way for every kind.
public protocol TableFile {
    /// Parses `contents`; errors name `file` and the line.
    static func parse(contents: String, file: String) throws -> Self
}

extension TableFile {
    /// Reads and parses the file at `path`; an unreadable file is an error naming it.
    public static func load(path: String) throws -> Self {
        let contents: String
        do {
            contents = try TextFile.readText(path: path)
        } catch let problem as TextFile.ReadError {
            throw ConfigurationError(file: path, line: nil, message: problem.reason)
        }
        return try parse(contents: contents, file: path)
    }
}
