// SPDX-License-Identifier: Apache-2.0
import FuzzSupport
import MIME

/// The signable entity, and the differential check of the streamed conversion.
///
/// `SignableEntity.make` must give CRLF bytes or a `MIMEError`. Where the milter would take the
/// streaming path for a spooled body (`VerbatimBodyScanner` says the body is kept verbatim, or
/// `StreamingTextConverter` takes a single text part, or `StreamingMultipartConverter` makes a
/// plan of a multipart), the streamed entity must be exactly the
/// bytes of the in-memory one. The body is fed in pieces of a size taken from the input's
/// length, so piece boundaries fall everywhere: inside CRLF, inside UTF-8 sequences, mid-line.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    let limits = MIMELimits(maxDepth: 16, maxParts: 200, maxHeaderFields: 100)
    guard let (fields, body) = try? MessageParser.split(input, limits: limits) else { return 0 }
    let inMemory: SignableEntity
    do {
        inMemory = try SignableEntity.make(fields: fields, body: body, limits: limits)
    } catch is MIMEError {
        return 0
    } catch {
        fuzzFailure("unexpected error type: \(error)")
    }
    if !LineEnds.isCRLF(inMemory.bytes) { fuzzFailure("the signable entity is not CRLF") }
    for field in inMemory.movedFieldIndexes where !fields[field].name.lowercased().hasPrefix("content-") {
        fuzzFailure("moved a field that is not Content-*: \(fields[field].name)")
    }
    for pieceSize in [1 + size % 17, max(1, body.count)] {
        if let streamed = streamed(fields: fields, body: body, pieceSize: pieceSize), streamed != inMemory.bytes {
            let at = zip(streamed, inMemory.bytes).enumerated().first { $1.0 != $1.1 }?.offset ?? min(streamed.count, inMemory.bytes.count)
            func around(_ b: [UInt8]) -> String { String(decoding: b[min(b.count, max(0, at - 40))..<min(b.count, at + 40)], as: UTF8.self).debugDescription }
            fuzzFailure("streamed entity (pieces of \(pieceSize)) differs from the in-memory one at byte \(at): "
                        + "\(streamed.count) bytes against \(inMemory.bytes.count); streamed \(around(streamed)), "
                        + "in memory \(around(inMemory.bytes))")
        }
    }
    return 0
}

/// The entity as the spooled-body path makes it, or nil when that path would not be taken.
private func streamed(fields: [HeaderField], body: [UInt8], pieceSize: Int) -> [UInt8]? {
    func pieces(_ each: (UnsafeRawBufferPointer) -> Void) {
        body.withUnsafeBytes { all in
            var start = 0
            while start < all.count {
                let end = min(all.count, start + pieceSize)
                each(UnsafeRawBufferPointer(rebasing: all[start..<end]))
                start = end
            }
        }
    }
    var scanner = VerbatimBodyScanner(fields: fields, needle: [])
    pieces { scanner.feed($0) }
    if scanner.finish().verbatim {
        guard let header = try? SignableEntity.make(fields: fields, body: []).bytes else {
            fuzzFailure("the in-memory entity was made but not the header of the verbatim one")
        }
        return header + body
    }
    if var multipart = StreamingMultipartConverter(fields: fields, needle: [], largeLeaf: 16) {
        // Small leaves (over 16 bytes) stay in the body so that the fuzzer reaches the plan.
        pieces { multipart.feed($0) }
        let made: StreamedEntityPlan?
        do { made = try multipart.finish() } catch {
            fuzzFailure("the in-memory entity was made but not the multipart's skeleton: \(error)")
        }
        guard let plan = made else { return nil }
        guard let out = try? plan.render(body: body, pieceSize: pieceSize) else {
            fuzzFailure("the plan of the streamed multipart cannot be rendered")
        }
        return out
    }
    guard var converter = StreamingTextConverter(fields: fields) else { return nil }
    var runs = LineRuns()
    pieces { runs.feed($0) { converter.scan($0) } }
    runs.finish { converter.scan($0) }
    if runs.cutALine { return nil }
    guard var out = try? converter.header() else {
        fuzzFailure("the in-memory entity was made but not the streamed header")
    }
    var second = LineRuns()
    pieces { second.feed($0) { out += converter.convert($0) } }
    second.finish { out += converter.convert($0) }
    return out
}

@_cdecl("FuzzSignable_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzOneInput)
}
