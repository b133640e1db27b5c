// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME

/// What verifying a spooled body from its file gave.
public enum StreamedVerification: Sendable {
    /// Verified from the file. `signatureBody` is the body with part 1 left out (the signature
    /// part in its multipart/signed frame): what comes after the verdict and needs the
    /// signature, not the content (harvesting the signer's certificate), parses it as the body.
    case verified(VerificationReport, signatureBody: [UInt8])
    /// Only the in-memory path can decide (the reason, for tests and the log).
    case needsMemory(String)
}

extension MessageVerifier {
    /// The largest part 2 header read beside a signature of `maxSignatureBytes`.
    static let signatureHeaderAllowance = 64 * 1024
    /// Part 1 up to this size is read and parsed whole for its protected headers (as the
    /// in-memory path does); of a larger one only this much, for its header.
    static let signedHeaderPrefix = 256 * 1024

    /// Verifies a message whose body is a spool file, without reading part 1 into memory: for a
    /// top-level multipart/signed (the shape of a large signed message), the delimiters are
    /// found in one pass over the file (`SignedBodyScanner`), the small signature part is read
    /// and decoded, and OpenSSL hashes part 1 straight from the file. The report is the one
    /// `verify(fields:body:fromAddress:at:)` gives for the same body.
    ///
    /// `needsMemory` whenever that is not certain, and the caller then reads the body and uses
    /// the in-memory path: another shape (opaque signed-data, a signed part inside a multipart,
    /// unsigned mail), a body the scanner calls irregular (a bare CR or LF in part 1, which the
    /// in-memory path canonicalises before hashing; not exactly two parts; a signature part over
    /// `maxSignatureBytes`), a part 1 header that cannot be read from its first bytes, and a
    /// digest mismatch while diagnosis is on: the diagnoser compares candidate edits of part 1,
    /// which needs it in memory, and only a failed verification pays for that.
    ///
    /// One difference is deliberate: part 1's own MIME tree is not parsed, so `options.limits`
    /// (which bound the parser's work) are not applied to it; the in-memory path would call a
    /// part 1 with more entities than `maxParts` unprocessable (neutral) even when the signature
    /// over it is good.
    ///
    /// - Throws: `BodyFile.ReadError` when the file cannot be read.
    public func verify(fields: [HeaderField], file: BodyFile, fromAddress: String?, at time: Date) throws -> StreamedVerification {
        guard file.isPlain else { return .needsMemory("the body is a converted view") }
        // The parser's reading of the top-level Content-Type (an unparsable one is text/plain).
        guard let field = fields.first(named: "Content-Type"), let type = ContentType(parsing: field.value),
              type.mediaType == "multipart/signed", SignatureLocator.isPKCS7SignatureProtocol(type.parameter("protocol")),
              let boundary = type.boundary, !boundary.isEmpty
        else { return .needsMemory("not a top-level multipart/signed") }

        let layout: SignedBodyLayout
        switch try SignedBodyScanner.scan(file, boundary: boundary,
                                          maxSignaturePart: options.maxSignatureBytes + Self.signatureHeaderAllowance) {
        case .irregular(let why): return .needsMemory(why)
        case .layout(let found): layout = found
        }

        // Part 2 is small (bounded by the scan): parsed as the in-memory parser parses a body part.
        let signatureBytes = try file.bytes(in: layout.signatureRange)
        let signature: MIMEEntity
        do {
            signature = try MIMEParser.parse(message: signatureBytes, limits: options.limits)
        } catch {
            return .needsMemory("the signature part cannot be parsed: \(error)")
        }
        let part = "2"   // SignatureLocator.section of part 2 of a top-level multipart/signed
        let harvestBody = Self.signatureFrame(boundary: boundary, signaturePart: signatureBytes)
        let der: [UInt8]
        switch detachedSignatureDER(signature, part: part) {
        case .success(let bytes): der = bytes
        case .failure(let refusal): return .verified(refusal.report, signatureBody: harvestBody)
        }

        // Part 1 exactly, CRLF already (the scanner made sure), so no canonicalisation is needed.
        let content = FileRangeContent(file: file, range: layout.signedRange)
        let checked = try cmsVerifier.verify(signedData: der, detachedContent: content, at: time)
        if checked.status == .contentAltered, options.diagnosis.enabled {
            return .needsMemory("digest mismatch: the diagnosis needs part 1 in memory")
        }
        var report = report(checked, part: part, from: fromAddress, detached: true)
        if report.integrity == .intact {
            switch try protectedHeaders(file: file, signed: layout.signedRange) {
            case .some(let found): report.protectedHeaders = found
            case .none: return .needsMemory("the header of part 1 does not end within its first \(Self.signedHeaderPrefix) bytes")
            }
        }
        // The signed entity is the message itself (a top-level multipart/signed), so nothing is
        // left uncovered: `applyCoverage` would change nothing.
        return .verified(report, signatureBody: harvestBody)
    }

    /// The protected headers of part 1 (`.some(nil)` when it carries none), read from its first
    /// bytes; nil when these do not hold the header(s) needed.
    private func protectedHeaders(file: BodyFile, signed: Range<Int>) throws -> ProtectedHeaders?? {
        if signed.count <= Self.signedHeaderPrefix {
            // Small enough to parse whole, exactly as the in-memory path does.
            guard let entity = try? MIMEParser.parse(message: file.bytes(in: signed), limits: options.limits) else { return nil }
            return .some(ProtectedHeaders.of(entity))
        }
        let prefix = try file.bytes(in: signed.lowerBound..<(signed.lowerBound + Self.signedHeaderPrefix))
        // A header over the limits, or one that runs on past the prefix: the whole part decides.
        guard let entity = try? MIMEParser.parseHeaders(ofPrefix: prefix, limits: options.limits) else { return nil }
        return .some(ProtectedHeaders.of(entity))
    }

    /// A multipart/signed body holding only the signature part (part 1 empty): parsed with the
    /// message's own header fields it locates the same signature part.
    static func signatureFrame(boundary: String, signaturePart: [UInt8]) -> [UInt8] {
        let dash = Array(("--" + boundary).utf8)
        return dash + [13, 10, 13, 10] + dash + [13, 10] + signaturePart + [13, 10] + dash + Array("--\r\n".utf8)
    }
}
