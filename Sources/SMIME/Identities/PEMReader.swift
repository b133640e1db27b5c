// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// Reads certificates and private keys out of PEM text with OpenSSL's PEM readers.
enum PEMReader {
    /// At most this many certificates are read from one file (bounded work).
    static let maximumCertificates = 64

    /// Every certificate in `pem`, in file order, as owned `X509*` (the caller frees them).
    /// Non-certificate blocks (keys) are skipped by OpenSSL itself.
    static func certificates(in pem: [UInt8]) throws -> [OpaquePointer] {
        try OpenSSL.withMemoryBIO(pem) { bio in
            var certs: [OpaquePointer] = []
            while certs.count < maximumCertificates, let cert = PEM_read_bio_X509(bio, nil, nil, nil) {
                certs.append(cert)
            }
            // Reading stops with a "no start line" error at the end of the text: expected.
            _ = OpenSSL.drainErrors()
            return certs
        }
    }

    /// Whether the text has a PEM private-key block ("-----BEGIN ... PRIVATE KEY-----").
    /// A textual test, used to decide on permission checks before any key is parsed.
    static func containsPrivateKey(_ pem: [UInt8]) -> Bool {
        let text = String(decoding: pem, as: UTF8.self)
        var rest = text[...]
        while let begin = rest.range(of: "-----BEGIN ") {
            rest = rest[begin.upperBound...]
            guard let end = rest.range(of: "-----") else { return false }
            if rest[..<end.lowerBound].hasSuffix("PRIVATE KEY") { return true }
            rest = rest[end.upperBound...]
        }
        return false
    }

    /// The private key in `pem` as an owned `EVP_PKEY*`; `passphrase` decrypts an encrypted key.
    /// Never prompts on a terminal: without a passphrase the callback supplies none.
    static func privateKey(in pem: [UInt8], passphrase: [UInt8]?) throws -> OpaquePointer? {
        var secret: [CChar] = (passphrase ?? []).map { CChar(bitPattern: $0) }
        secret.append(0)
        defer { for index in secret.indices { secret[index] = 0 } }
        return try OpenSSL.withMemoryBIO(pem) { bio in
            secret.withUnsafeMutableBufferPointer { buffer in
                PEM_read_bio_PrivateKey(bio, nil, { output, size, _, user in
                    guard let output, let user, size > 0 else { return 0 }
                    let source = user.assumingMemoryBound(to: CChar.self)
                    let length = min(Int(size), strlen(source))
                    output.update(from: source, count: length)
                    return Int32(length)
                }, buffer.baseAddress)
            }
        }
    }
}
