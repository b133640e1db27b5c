// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import MIME

/// Real S/MIME mail from other projects (`<repo>/../shared/corpus`, see its README.md).
@Suite struct CorpusTests {
    struct Row: Sendable, CustomTestStringConvertible {
        let file: String
        let kind: String
        let opensslResult: String
        var testDescription: String { file }

        /// The `L1` group of `openssl_result`: the outermost signature layer.
        var layerOne: String {
            let first = opensslResult.components(separatedBy: "|").first ?? ""
            return first.trimmingCharacters(in: .whitespaces)
        }
    }

    static let corpus = sharedFolder.appendingPathComponent("corpus")

    static let rows: [Row] = {
        guard let manifest = try? String(contentsOf: corpus.appendingPathComponent("MANIFEST.tsv"), encoding: .utf8) else {
            return []
        }
        return manifest.split(separator: "\n").dropFirst().compactMap { line in
            let cols = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return cols.count >= 8 ? Row(file: cols[0], kind: cols[1], opensslResult: cols[7]) : nil
        }
    }()

    /// The message bytes; an AS2 (HTTP) request line is dropped.
    static func load(_ row: Row) throws -> [UInt8] {
        var data = [UInt8](try Data(contentsOf: corpus.appendingPathComponent(row.file)))
        if data.starts(with: Array("POST ".utf8)), let lf = data.firstIndex(of: 10) { data.removeSubrange(0...lf) }
        return data
    }

    /// The bytes of an entity rebuilt from its parts; equals `rawBytes` when the spans are exact.
    static func rebuild(_ e: MIMEEntity) -> [UInt8] {
        var out = Array(e.buffer[e.headerRange]) + Array(e.buffer[e.separatorRange])
        switch e.content {
        case .leaf:
            out += e.body
        case .message(let inner):
            out += rebuild(inner)
        case .multipart(let m):
            out += e.buffer[m.preambleRange]
            for (d, p) in zip(m.delimiterRanges, m.parts) { out += e.buffer[d] + rebuild(p) }
            if let c = m.closeDelimiterRange { out += e.buffer[c] }
            out += e.buffer[m.epilogueRange]
        }
        return out
    }

    @Test func manifestIsThere() {
        #expect(Self.rows.count >= 100, "corpus manifest missing or short at \(Self.corpus.path)")
    }

    @Test(arguments: rows)
    func parsesAndConverts(_ row: Row) throws {
        let raw = try Self.load(row)
        let (fields, body) = try MessageParser.split(raw)
        #expect(!fields.isEmpty)
        let tree = try MIMEParser.parse(fields: fields, body: body)
        #expect(Self.rebuild(tree) == body, "spans do not cover the body")
        for e in tree.allEntities where e.role != .topLevel {
            #expect(e.rawBytes.starts(with: e.headerBytes))
        }
        let outer = row.kind.components(separatedBy: ">").first ?? ""
        if ["multipart-signed", "opaque-signed", "enveloped"].contains(outer) {
            #expect(SignableEntity.isAlreadySigned(fields: fields))
        }
        // Converting must give a 7-bit entity or a clear error, never a crash.
        do {
            let e = try SignableEntity.make(fields: fields, body: body)
            expectSignable(e)
            try expectSameContent(fields: fields, body: body, e)
        } catch let error as MIMEError {
            Issue.record("unexpected conversion error: \(error)")
        }
    }

    /// For top-level multipart/signed messages, part 1's raw range must be exactly what was signed:
    /// OpenSSL verifies the signature (without the chain) over those bytes where the manifest says
    /// the signature is good, and rejects them where it records a digest mismatch.
    @Test(arguments: rows.filter { $0.kind.hasPrefix("multipart-signed") && !$0.kind.hasPrefix("multipart-signed@") })
    func partOneRangeIsTheSignedContent(_ row: Row) throws {
        let raw = try Self.load(row)
        let (fields, body) = try MessageParser.split(raw)
        let tree = try MIMEParser.parse(fields: fields, body: body)
        #expect(tree.contentType.mediaType == "multipart/signed")
        let m = try #require(tree.multipart)
        #expect(m.parts.count == 2)
        let part1 = m.parts[0]
        #expect(part1.rawBytes.starts(with: part1.headerBytes))
        #expect(!part1.headerBytes.isEmpty)
        let after = body[part1.range.upperBound...]
        #expect(after.starts(with: Array("\r\n--\(m.boundary)".utf8)), "part 1 must stop before the CRLF of the delimiter")

        let signature = m.parts[1]
        #expect(signature.contentType.subtype.hasSuffix("pkcs7-signature"))
        let expectGood = row.layerOne.contains("sig=OK")
        let expectBad = row.layerOne.contains("sig=digest-mismatch")
        #expect(expectGood || expectBad, "manifest has no sig= result")
        guard OpenSSL.path != nil else { return }
        var der = signature.decodedBody
        if signature.transferEncoding.isIdentity {
            // A raw DER signature (AS2 over HTTP) must not be line-end canonicalised: take it from
            // a parse of the unmodified bytes.
            let rawTree = try MIMEParser.parse(message: raw)
            der = Array(try #require(rawTree.multipart?.parts.last).body)
        }
        let ok = try OpenSSL.verifyDetached(content: Array(part1.rawBytes), signatureDER: der)
        #expect(ok == expectGood, "openssl: \(row.layerOne)")
    }
}

/// Runs `openssl cms -verify -noverify -binary` as an independent check of the signed byte range.
enum OpenSSL {
    static let path = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// nil when openssl is not installed.
    static func verifyDetached(content: [UInt8], signatureDER: [UInt8]) throws -> Bool? {
        guard let path else { return nil }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mime-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let contentURL = dir.appendingPathComponent("content")
        let sigURL = dir.appendingPathComponent("sig.der")
        try Data(content).write(to: contentURL)
        try Data(signatureDER).write(to: sigURL)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = ["cms", "-verify", "-noverify", "-binary", "-inform", "DER", "-in", sigURL.path,
                       "-content", contentURL.path, "-out", "/dev/null"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus == 0
    }
}
