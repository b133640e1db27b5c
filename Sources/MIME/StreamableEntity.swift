// SPDX-License-Identifier: Apache-2.0
extension SignableEntity {
    /// The signable entity of a spooled body as its header and a body read from the file, so
    /// that a large body is signed and written back without being held in memory: the file as
    /// it is when the 7-bit conversion keeps it (`VerbatimBodyScanner`), or a converting view
    /// for a single-part text body (`StreamingTextConverter`: 8-bit text, long lines and the
    /// like become quoted-printable a run of lines at a time), or the skeleton-and-ranges plan
    /// of a multipart with large leaves (`StreamingMultipartConverter`: an 8-bit text part beside
    /// a base64 attachment), whose header is then part of the body view. Nil when neither applies, or
    /// when `boundary` occurs in the entity (practically impossible with 32 random characters;
    /// the in-memory path then chooses another). With `protectingHeaders` the entity carries
    /// RFC 9788 protected headers (`protectingHeaders(_:)`); only the verbatim case streams then,
    /// since the converting view writes its own header.
    public static func streamable(fields: [HeaderField], file: BodyFile, boundary: String,
                                  protectingHeaders: Bool = false) throws -> (header: [UInt8], body: BodyFile)? {
        let needle = Array(boundary.utf8)
        var scanner = VerbatimBodyScanner(fields: fields, needle: needle)
        // The multipart converter reads the same pass: no second read of a large body.
        var multipart = StreamingMultipartConverter(fields: fields, needle: needle)
        try file.forEachPiece { scanner.feed($0); multipart?.feed($0) }
        let scan = scanner.finish()
        if scan.verbatim {
            var entity = try SignableEntity.make(fields: fields, body: [])
            if protectingHeaders { entity = entity.protectingHeaders(fields) }
            let header = entity.bytes
            guard !scan.containsNeedle, !ByteSearch.contains(header, needle) else { return nil }
            return (header, file)
        }
        if var multipart {
            guard let plan = try multipart.finish(protectingHeaders: protectingHeaders) else { return nil }
            return ([], try file.rendering(plan))
        }
        guard !protectingHeaders, var converter = StreamingTextConverter(fields: fields) else { return nil }
        var runs = LineRuns()
        var boundaryInText = false
        func scanRun(_ run: UnsafeRawBufferPointer) {
            converter.scan(run)
            // Runs hold whole lines and a boundary holds no line break: no occurrence straddles two.
            if !boundaryInText { boundaryInText = ByteSearch.firstOffset(of: needle, in: run.assumingMemoryBound(to: UInt8.self)) != nil }
        }
        try file.forEachPiece { piece in runs.feed(piece, scanRun) }
        runs.finish(scanRun)
        guard !runs.cutALine else { return nil }
        let header = try converter.header()
        // The converted body cannot hold the boundary unless the text does: CRLF completion
        // adds only line breaks, and quoted-printable writes "=" only before two hex digits or
        // a line break, never before the "_" that follows "=" in our boundaries.
        let found = boundaryInText || ByteSearch.contains(header, needle)
        let body = try file.convertingText(with: converter)
        return found ? nil : (header, body)
    }
}
