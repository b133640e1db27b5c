// SPDX-License-Identifier: Apache-2.0
/// The signable entity of a large multipart as a list of pieces: bytes made in memory (the
/// converted headers, delimiters and small parts) and ranges of the spooled body that are
/// copied as they are or converted to quoted-printable a run of lines at a time. Made by
/// `StreamingMultipartConverter`; rendered from a file by `BodyFile`, or from memory by the
/// differential fuzz target, with the same `render`.
public struct StreamedEntityPlan: Sendable, Equatable {
    /// One piece of the entity.
    public enum Segment: Sendable, Equatable {
        /// Bytes as they are.
        case bytes([UInt8])
        /// A range of the body, copied as it is (a leaf the 7-bit conversion keeps).
        case verbatim(Range<Int>)
        /// A range of the body holding whole lines of a text leaf that only lacked CRLF line
        /// ends, written as `LineEnds.toCRLF(range)`.
        case crlf(Range<Int>)
        /// A range of the body holding whole lines of a text leaf, written as
        /// `QuotedPrintable.encode(LineEnds.toCRLF(range), isText: true)`.
        case quotedPrintable(Range<Int>)
    }

    /// The segments in order.
    public let segments: [Segment]

    /// Writes the entity: `read(range, pieceSize, each)` hands out the bytes of a range of the
    /// body in order, in pieces of at most `pieceSize`; `emit` receives the entity in pieces.
    public func render(pieceSize: Int = 1 << 20,
                       read: (Range<Int>, Int, (UnsafeRawBufferPointer) throws -> Void) throws -> Void,
                       emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        // One closure handed to the other: Swift's exclusivity check needs them marked.
        try withoutActuallyEscaping(read) { read in
            try withoutActuallyEscaping(emit) { emit in try render(pieceSize: pieceSize, reading: read, emitting: emit) }
        }
    }

    private func render(pieceSize: Int,
                        reading read: @escaping (Range<Int>, Int, (UnsafeRawBufferPointer) throws -> Void) throws -> Void,
                        emitting emit: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        for segment in segments {
            switch segment {
            case let .bytes(bytes):
                try bytes.withUnsafeBytes { try emit($0) }
            case let .verbatim(range):
                try read(range, pieceSize, emit)
            case let .crlf(range):
                var runs = LineRuns()
                func convert(_ run: UnsafeRawBufferPointer) throws { try LineEnds.toCRLF(run).withUnsafeBytes { try emit($0) } }
                try read(range, pieceSize) { try runs.feed($0, convert) }
                try runs.finish(convert)
            case let .quotedPrintable(range):
                // Runs of whole lines: quoted-printable of text is line-local (each hard line
                // break resets the column), so the runs' encodings concatenate to the whole one.
                var runs = LineRuns()
                func convert(_ run: UnsafeRawBufferPointer) throws {
                    try QuotedPrintable.encode(LineEnds.toCRLF(run), isText: true).withUnsafeBytes { try emit($0) }
                }
                try read(range, pieceSize) { try runs.feed($0, convert) }
                try runs.finish(convert)
                // The plan was made only for lines LineRuns carries whole.
                guard !runs.cutALine else { throw BodyFile.ReadError(description: "the spooled body changed between passes") }
            }
        }
    }

    /// The entity rendered from a body in memory (tests and the fuzz target).
    public func render(body: [UInt8], pieceSize: Int = 1 << 20) throws -> [UInt8] {
        var out = [UInt8]()
        try body.withUnsafeBytes { all in
            try render(pieceSize: pieceSize, read: { range, size, each in
                var start = range.lowerBound
                while start < range.upperBound {
                    let end = min(range.upperBound, start + size)
                    try each(UnsafeRawBufferPointer(rebasing: all[start..<end]))
                    start = end
                }
            }, emit: { out.append(contentsOf: $0) })
        }
        return out
    }
}
