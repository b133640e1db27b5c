// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// Small helpers around OpenSSL's C API, shared by the loader, the signer and `CertificateInfo`.
enum OpenSSL {
    /// Empties this thread's OpenSSL error queue and returns its entries, oldest first.
    ///
    /// Only the error codes' texts are returned (`ERR_error_string_n`), never the
    /// per-error "data" strings: those can echo what a PEM reader was looking for
    /// and we never want anything key-related in a message. Bounded to 16 entries.
    static func drainErrors() -> [String] {
        var texts: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            if texts.count < 16 {
                var buffer = [CChar](repeating: 0, count: 256)
                ERR_error_string_n(code, &buffer, buffer.count)
                texts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
        }
        return texts
    }

    /// Runs `body` with a read-only memory BIO over `bytes`; the BIO is freed afterwards.
    static func withMemoryBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) throws -> T) throws -> T {
        guard bytes.count < Int(Int32.max) else {
            throw SMIMEError(.inputTooLarge, "input of \(bytes.count) bytes is too large")
        }
        // BIO_new_mem_buf needs a non-NULL pointer even for empty input.
        let storage = bytes.isEmpty ? [0] : bytes
        return try storage.withUnsafeBytes { raw -> T in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(bytes.count)) else {
                throw SMIMEError(.openSSL, "cannot create a memory BIO", openSSLErrors: drainErrors())
            }
            defer { BIO_free(bio) }
            return try body(bio)
        }
    }

    /// The bytes written so far into a memory BIO.
    static func contents(ofMemoryBIO bio: OpaquePointer) -> [UInt8] {
        var pointer: UnsafeMutablePointer<CChar>?
        let length = smime_BIO_get_mem_data(bio, &pointer)
        guard length > 0, let pointer else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
    }

    /// An ASN1_STRING (IA5String, UTF8String, ...) as a Swift string, via ASN1_STRING_to_UTF8.
    static func string(_ value: UnsafePointer<ASN1_STRING>?) -> String? {
        guard let value else { return nil }
        var out: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&out, value)
        guard length >= 0, let out else { return nil }
        defer { smime_OPENSSL_free(out) }
        return String(decoding: UnsafeBufferPointer(start: out, count: Int(length)), as: UTF8.self)
    }

    /// A distinguished name as one RFC 2253 line ("CN=alice@example.com,O=Example"), UTF-8 kept.
    static func oneLine(_ name: OpaquePointer?) -> String {
        guard let name, let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard X509_NAME_print_ex(bio, name, 0, smime_name_flags_rfc2253_utf8()) >= 0 else {
            _ = drainErrors()
            return ""
        }
        return String(decoding: contents(ofMemoryBIO: bio), as: UTF8.self)
    }

    /// An ASN1_TIME as a Date (nil when OpenSSL cannot parse it).
    static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date? {
        guard let time else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else {
            _ = drainErrors()
            return nil
        }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    /// An ASN1_INTEGER as upper-case hexadecimal without leading zeros ("0" for zero).
    static func hex(_ integer: UnsafePointer<ASN1_INTEGER>?) -> String {
        guard let integer, let bn = ASN1_INTEGER_to_BN(integer, nil) else { return "" }
        defer { BN_free(bn) }
        guard let text = BN_bn2hex(bn) else { return "" }
        defer { smime_OPENSSL_free(text) }
        return String(cString: text)
    }
}
