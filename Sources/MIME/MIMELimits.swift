// SPDX-License-Identifier: Apache-2.0
/// Resource bounds for parsing and converting one message.
///
/// Exceeding a bound throws a `MIMEError`; the parser never recurses deeper than `maxDepth`
/// (itself capped at `MIMELimits.depthCap`, so a misconfiguration cannot exhaust a thread stack).
public struct MIMELimits: Sendable, Equatable {
    /// Hard cap on `maxDepth`: the parser and converter recurse once per level.
    public static let depthCap = 256

    /// Maximum nesting of entities (multipart children and encapsulated messages); top level is 0.
    public var maxDepth: Int
    /// Maximum number of entities in the whole tree, the top level included.
    public var maxParts: Int
    /// Maximum number of header fields in any one header section.
    public var maxHeaderFields: Int

    /// Limits; `maxDepth` is clamped to `0...depthCap`.
    public init(maxDepth: Int = 64, maxParts: Int = 10_000, maxHeaderFields: Int = 10_000) {
        self.maxDepth = max(0, min(maxDepth, MIMELimits.depthCap))
        self.maxParts = max(1, maxParts)
        self.maxHeaderFields = max(0, maxHeaderFields)
    }
}
