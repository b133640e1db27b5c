// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
@testable import SMIME

/// One row of `../shared/corpus/MANIFEST.tsv`.
struct CorpusRow: Sendable, CustomStringConvertible {
    let file: String
    let kind: String
    let expected: String
    let signerEmail: String
    let trustAnchor: String
    let digest: String
    let signatureAlgorithm: String
    let openSSLResult: String
    let notes: String

    var description: String { file }
    /// The outermost layer is encryption (`enveloped>...`, not `...@N`).
    var isEnveloped: Bool { kind.hasPrefix("enveloped") && !kind.hasPrefix("enveloped@") }
    /// OpenSSL needed the signing time (`attime=`) for the chain.
    var needsSigningTime: Bool { openSSLResult.contains("attime=") }
}

/// The shared real-mail corpus, found next to the repository (`<repo>/../shared/corpus`).
enum Corpus {
    static let root = TestPKI.repositoryRoot + "/../shared/corpus"

    static func rows() throws -> [CorpusRow] {
        let text = try String(contentsOfFile: root + "/MANIFEST.tsv", encoding: .utf8)
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let c = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard c.count >= 9 else { return nil }
            return CorpusRow(file: c[0], kind: c[1], expected: c[2], signerEmail: c[3], trustAnchor: c[4],
                             digest: c[5], signatureAlgorithm: c[6], openSSLResult: c[7], notes: c[8])
        }
    }

    static func bytes(_ row: CorpusRow) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/" + row.file)))
    }

    /// The Date header field of a message (for rows without a signingTime attribute).
    static func dateField(_ message: [UInt8]) -> Date? {
        let start = MessageVerifier.startOfHeader(message)
        guard let entity = try? MIMEParser.parse(message: Array(message[start...])),
              let value = entity.fields.first(named: "Date")?.value.trimmingCharacters(in: .whitespacesAndNewlines)
        else { return nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        for format in ["EEE, d MMM yyyy HH:mm:ss Z", "d MMM yyyy HH:mm:ss Z", "EEE, d MMM yyyy HH:mm:ss zzz"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: value) { return date }
        }
        return nil
    }

    /// The known deviations: file → reason, from `Tests/known-deviations.tsv`.
    static func deviations() throws -> [String: String] {
        let text = try String(contentsOfFile: TestPKI.repositoryRoot + "/Tests/known-deviations.tsv", encoding: .utf8)
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let c = line.split(separator: "\t", maxSplits: 1).map(String.init)
            if c.count == 2 { out[c[0]] = c[1] }
        }
        return out
    }

    /// The trust for a row: its anchor file, or, for rows without one, the certificates the
    /// message itself carries, pinned (partial chain). The latter still checks signature,
    /// digest, validity and key usage, just not the path to a CA the corpus does not have.
    static func trust(for row: CorpusRow, message: [UInt8]) throws -> TrustStore {
        if !row.trustAnchor.isEmpty {
            return try TrustStore(anchors: [root + "/" + row.trustAnchor])
        }
        let start = MessageVerifier.startOfHeader(message)
        let entity = try MIMEParser.parse(message: Array(message[start...]))
        let helper = MessageVerifier(trust: try TrustStore(anchors: [root + "/anchors/comm-central/TestCA.pem"]))
        let signaturePart: MIMEEntity
        switch SignatureLocator.locate(entity) {
        case .detached(_, _, let signature): signaturePart = signature
        case .pkcs7Mime(let part): signaturePart = part
        default: return try TrustStore(anchors: [root + "/anchors/comm-central/TestCA.pem"])   // nothing to pin
        }
        guard case .success(let der) = helper.decode(signaturePart) else { throw TestFailure("\(row.file): undecodable signature") }
        return try TrustStore(pem: CMSVerifier.embeddedCertificatesPEM(der), trustNonRootCertificates: true)
    }
}
