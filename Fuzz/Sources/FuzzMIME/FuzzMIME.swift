// SPDX-License-Identifier: Apache-2.0
import FuzzSupport
import MIME

/// Message split and MIME parse: any input gives a tree or a `MIMEError`, never a crash, and
/// the tree stays within the limits it was parsed with.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    let limits = MIMELimits(maxDepth: 16, maxParts: 200, maxHeaderFields: 100)
    do {
        let (fields, body) = try MessageParser.split(input, limits: limits)
        if !LineEnds.isCRLF(body) { fuzzFailure("split gave a body that is not CRLF") }
        let root = try MIMEParser.parse(fields: fields, body: body, limits: limits)
        var count = 0
        walk(root, depth: 0, count: &count, limits: limits)
        for field in fields {
            _ = ContentType(parsing: field.value)
            _ = ContentDisposition(parsing: field.value)
        }
    } catch is MIMEError {
    } catch {
        fuzzFailure("unexpected error type: \(error)")
    }
    return 0
}

private func walk(_ entity: MIMEEntity, depth: Int, count: inout Int, limits: MIMELimits) {
    count += 1
    if depth > limits.maxDepth { fuzzFailure("entity at depth \(depth) over the limit \(limits.maxDepth)") }
    if count > limits.maxParts { fuzzFailure("\(count) entities over the limit \(limits.maxParts)") }
    _ = entity.contentType.mediaType
    _ = entity.transferEncoding
    // The ranges the parser hands out must lie inside the buffer (a slice traps otherwise).
    _ = entity.rawBytes.count + entity.body.count
    switch entity.content {
    case .leaf: break
    case .multipart(let multipart):
        for range in [multipart.preambleRange, multipart.epilogueRange] + multipart.delimiterRanges
            + (multipart.closeDelimiterRange.map { [$0] } ?? []) {
            _ = entity.buffer[range].count
        }
        for child in multipart.parts { walk(child, depth: depth + 1, count: &count, limits: limits) }
    case .message(let inner):
        walk(inner, depth: depth + 1, count: &count, limits: limits)
    }
}

@_cdecl("FuzzMIME_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzOneInput)
}
