// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation
import MIME

/// Detached content that stays in the spool file: `range` of a plain `BodyFile` (part 1 of a
/// large multipart/signed). `CMSVerifier` hashes it through a read-only source BIO, a piece at
/// a time, so the content is never held in memory.
public struct FileRangeContent: Sendable {
    public let file: BodyFile
    public let range: Range<Int>

    public init(file: BodyFile, range: Range<Int>) {
        self.file = file
        self.range = range
    }

    /// Whether the eContent bytes equal the range, compared a piece at a time (CVE-2018-18509:
    /// an eContent beside detached content is harmless only when it is the same bytes).
    func equals(_ bytes: UnsafeRawBufferPointer) throws -> Bool {
        guard bytes.count == range.count else { return false }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        var done = 0
        while done < range.count {
            let n = try file.read(at: range.lowerBound + done, into: UnsafeMutableRawBufferPointer(
                rebasing: buffer[0..<min(buffer.count, range.count - done)]))
            guard n > 0 else { throw BodyFile.ReadError(description: "cannot read the spooled body: the file is shorter than recorded") }
            if memcmp(buffer.baseAddress!, bytes.baseAddress! + done, n) != 0 { return false }
            done += n
        }
        return true
    }
}

/// A source BIO (OpenSSL's `BIO_METHOD` API, no cryptography of ours) that reads a
/// `FileRangeContent` with `pread`: `CMS_verify` with `CMS_BINARY` reads its content BIO to the end
/// through the digest BIOs, 4 KB at a time, so part 1 of a 100 MB message is hashed straight from
/// the spool file. A failed read makes the BIO read fail (`CMS_verify` then fails) and is kept in
/// `error`, so the caller reports it as a read error, not as a bad signature.
final class FileRangeReader {
    let content: FileRangeContent
    private(set) var offset: Int
    private(set) var error: (any Error)?

    init(_ content: FileRangeContent) {
        self.content = content
        self.offset = content.range.lowerBound
    }

    var atEnd: Bool { offset >= content.range.upperBound }

    /// Fills `buffer` from the current offset: the count read (0 at the end), or -1 after an error.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard error == nil else { return -1 }
        let wanted = min(buffer.count, content.range.upperBound - offset)
        guard wanted > 0 else { return 0 }
        do {
            let n = try content.file.read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<wanted]))
            guard n > 0 else { throw BodyFile.ReadError(description: "cannot read the spooled body: the file is shorter than recorded") }
            offset += n
            return n
        } catch {
            self.error = error
            return -1
        }
    }

    /// The method, made once per process: `BIO_get_new_index` hands out few type numbers, so it
    /// must not be called per message. Immutable after creation and shared by every thread.
    private struct Method: @unchecked Sendable { let pointer: OpaquePointer? }
    private static let method: Method = {
        let type = BIO_get_new_index()
        guard type > 0, let method = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK, "smime-milter spool file range") else {
            return Method(pointer: nil)
        }
        BIO_meth_set_read_ex(method) { bio, data, length, readBytes -> Int32 in
            readBytes?.pointee = 0
            guard let bio, let data, let raw = BIO_get_data(bio) else { return -1 }
            let reader = Unmanaged<FileRangeReader>.fromOpaque(raw).takeUnretainedValue()
            let n = reader.read(into: UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(data), count: length))
            // read_ex: 1 with bytes, 0 at the end (BIO_read then returns 0, the end of the
            // content for CMS), -1 on an error (BIO_read returns -1, and CMS_verify fails).
            if n < 0 { return -1 }
            readBytes?.pointee = n
            return n > 0 ? 1 : 0
        }
        // Without a ctrl function BIO_ctrl raises BIO_R_UNSUPPORTED_METHOD, which would end up in
        // the verification's error texts: answer the few controls a chain passes down quietly.
        BIO_meth_set_ctrl(method) { bio, command, _, _ -> Int in
            switch command {
            case BIO_CTRL_FLUSH: return 1
            case BIO_CTRL_EOF:
                guard let bio, let raw = BIO_get_data(bio) else { return 1 }
                return Unmanaged<FileRangeReader>.fromOpaque(raw).takeUnretainedValue().atEnd ? 1 : 0
            default: return 0
            }
        }
        return Method(pointer: method)
    }()

    /// Runs `body` with a BIO reading this range; the BIO is freed afterwards (the reader
    /// outlives it). Nil when OpenSSL could not make one.
    func withBIO<T>(_ body: (OpaquePointer) -> T) -> T? {
        guard let method = Self.method.pointer, let bio = BIO_new(method) else { return nil }
        defer { BIO_free(bio) }
        return withExtendedLifetime(self) {
            BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
            BIO_set_init(bio, 1)
            return body(bio)
        }
    }
}
