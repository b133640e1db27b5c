// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import MIME

/// A piece of a candidate reconstruction: bytes of the received content, new bytes, or a range
/// of the received content with CRLF turned into LF on the fly (so a 20 MB part is never copied).
enum DiagnosisPiece {
    case base(Range<Int>)
    case bytes([UInt8])
    case lf(Range<Int>)
}

/// Candidates that share a prefix of the received content: the prefix is hashed once and the
/// digest state copied for each candidate (`EVP_MD_CTX_copy_ex`), so cutting a footer at 24
/// line boundaries of a large part costs one pass over it, not 24.
struct DiagnosisCandidateGroup {
    var prefix: Range<Int>
    var candidates: [DiagnosisCandidate]
    /// Hash everything with CRLF turned into LF (a signer that hashed LF line ends, combined with
    /// another change); pieces start and end at line boundaries, so no CRLF is split.
    var lf = false
    /// The bytes the ranges point into, when not the received content (a reconstruction that a
    /// second change is looked for in).
    var base: [UInt8]? = nil
}

/// One reconstruction of the original signed bytes and what it would prove.
struct DiagnosisCandidate {
    var cause: DiagnosisCause
    var detail: String
    var mediaType: String? = nil
    var footer: String? = nil
    /// The bytes after the group's prefix.
    var pieces: [DiagnosisPiece]
    /// A second cause undone by the same reconstruction, and the media type it was found in.
    var second: DiagnosisCause? = nil
    var secondMediaType: String? = nil
}

/// Why the oracle stopped.
enum DiagnosisStop: Error {
    case digestLimit(Int)
    case timeBudget(Duration)
}

/// The signed messageDigest attributes of a SignedData and the digests to compare them with,
/// taken from OpenSSL (`CMS_get0_SignerInfos`, `CMS_SignerInfo_get0_algs`,
/// `CMS_signed_get0_data_by_OBJ`), and the counted, time-bounded hashing of candidates.
/// Not Sendable: one per diagnosis.
final class DiagnosisOracle {
    /// One digest algorithm and the messageDigest values signed with it.
    struct Target {
        let md: OpaquePointer
        let name: String
        var expected: [[UInt8]]
    }

    private(set) var targets: [Target] = []
    private(set) var computations = 0
    let maxComputations: Int
    let timeBudget: Duration
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant

    /// Why there is no oracle (no signers, no signed attributes, unknown digest), when `targets` is empty.
    private(set) var problem: String?

    init(signatureDER der: [UInt8], maxSigners: Int, maxComputations: Int, timeBudget: Duration) {
        self.maxComputations = maxComputations
        self.timeBudget = timeBudget
        self.start = clock.now
        ERR_clear_error()
        defer { ERR_clear_error() }
        let parsed = CMSParser.decode(der)
        guard let cms = parsed else { problem = "the signature is not a valid CMS structure"; return }
        defer { CMS_ContentInfo_free(cms) }
        guard OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed, let infos = CMS_get0_SignerInfos(cms) else {
            problem = "the signature is not signed-data"
            return
        }
        let count = Int(smime_sk_CMS_SignerInfo_num(infos))
        guard count > 0 else { problem = "the signature has no signers"; return }
        var missing = 0
        for index in 0..<min(count, max(1, maxSigners)) {
            guard let info = smime_sk_CMS_SignerInfo_value(infos, Int32(index)) else { continue }
            var digestAlgorithm: UnsafeMutablePointer<X509_ALGOR>?
            CMS_SignerInfo_get0_algs(info, nil, nil, &digestAlgorithm, nil)
            var object: OpaquePointer?
            if let digestAlgorithm { X509_ALGOR_get0(&object, nil, nil, digestAlgorithm) }
            let nid = object.map { OBJ_obj2nid($0) } ?? NID_undef
            guard nid != NID_undef, let shortName = OBJ_nid2sn(nid), let md = EVP_get_digestbyname(shortName),
                  let raw = CMS_signed_get0_data_by_OBJ(info, OBJ_nid2obj(NID_pkcs9_messageDigest), -3, V_ASN1_OCTET_STRING)
            else { missing += 1; continue }
            let octets = raw.assumingMemoryBound(to: ASN1_STRING.self)
            let length = Int(ASN1_STRING_length(octets))
            guard length > 0, length <= Int(EVP_MAX_MD_SIZE), let data = ASN1_STRING_get0_data(octets) else {
                missing += 1
                continue
            }
            let value = Array(UnsafeBufferPointer(start: data, count: length))
            let name = String(cString: shortName).lowercased()
            if let at = targets.firstIndex(where: { $0.name == name }) {
                targets[at].expected.append(value)
            } else {
                targets.append(Target(md: md, name: name, expected: [value]))
            }
        }
        if targets.isEmpty {
            problem = missing > 0
                ? "the signature carries no usable messageDigest attribute (no signed attributes or an unknown digest)"
                : "the signature has no signers"
        }
    }

    /// The time spent so far.
    var elapsed: Duration { clock.now - start }

    /// Throws when the next candidate may not be tried.
    func checkBudget() throws {
        if computations + targets.count > maxComputations { throw DiagnosisStop.digestLimit(maxComputations) }
        if elapsed > timeBudget { throw DiagnosisStop.timeBudget(timeBudget) }
    }

    /// The index of the first candidate of the group whose digest matches a signed
    /// messageDigest, or nil. Throws when the budget runs out first.
    func firstMatch(in group: DiagnosisCandidateGroup, base: [UInt8]) throws -> Int? {
        guard !group.candidates.isEmpty else { return nil }
        try checkBudget()
        for target in targets {
            guard let prefix = EVP_MD_CTX_new() else { return nil }
            defer { EVP_MD_CTX_free(prefix) }
            guard EVP_DigestInit_ex(prefix, target.md, nil) == 1 else { continue }
            try update(prefix, group.lf ? .lf(group.prefix) : .base(group.prefix), base: base)
            for (index, candidate) in group.candidates.enumerated() {
                try checkBudget()
                guard let ctx = EVP_MD_CTX_new() else { return nil }
                defer { EVP_MD_CTX_free(ctx) }
                guard EVP_MD_CTX_copy_ex(ctx, prefix) == 1 else { continue }
                for piece in candidate.pieces { try update(ctx, group.lf ? Self.lf(piece) : piece, base: base) }
                var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
                var length: UInt32 = 0
                guard EVP_DigestFinal_ex(ctx, &out, &length) == 1 else { continue }
                computations += 1
                let digest = Array(out.prefix(Int(length)))
                if target.expected.contains(digest) { return index }
            }
        }
        return nil
    }

    /// The piece with CRLF turned into LF.
    static func lf(_ piece: DiagnosisPiece) -> DiagnosisPiece {
        switch piece {
        case .base(let range), .lf(let range): return .lf(range)
        case .bytes(let bytes): return .bytes(LineEnds.toLF(bytes))
        }
    }

    /// Hashes one piece in slices of at most 1 MB, checking the time between slices.
    private func update(_ ctx: OpaquePointer, _ piece: DiagnosisPiece, base: [UInt8]) throws {
        let slice = 1 << 20
        switch piece {
        case .bytes(let bytes):
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + slice, bytes.count)
                bytes.withUnsafeBufferPointer { buffer in
                    if let start = buffer.baseAddress { _ = EVP_DigestUpdate(ctx, start + offset, end - offset) }
                }
                offset = end
                if offset < bytes.count, elapsed > timeBudget { throw DiagnosisStop.timeBudget(timeBudget) }
            }
        case .base(let range):
            let range = range.clamped(to: 0..<base.count)
            var offset = range.lowerBound
            while offset < range.upperBound {
                let end = min(offset + slice, range.upperBound)
                base.withUnsafeBufferPointer { buffer in
                    if let start = buffer.baseAddress { _ = EVP_DigestUpdate(ctx, start + offset, end - offset) }
                }
                offset = end
                if offset < range.upperBound, elapsed > timeBudget { throw DiagnosisStop.timeBudget(timeBudget) }
            }
        case .lf(let range):
            let range = range.clamped(to: 0..<base.count)
            var buffer = [UInt8]()
            buffer.reserveCapacity(min(slice, range.count))
            var index = range.lowerBound
            while index < range.upperBound {
                let byte = base[index]
                // CRLF → LF: drop a CR that a LF follows (inside the range).
                if !(byte == 0x0D && index + 1 < range.upperBound && base[index + 1] == 0x0A) { buffer.append(byte) }
                index += 1
                if buffer.count >= slice {
                    buffer.withUnsafeBufferPointer { _ = EVP_DigestUpdate(ctx, $0.baseAddress, $0.count) }
                    buffer.removeAll(keepingCapacity: true)
                    if elapsed > timeBudget { throw DiagnosisStop.timeBudget(timeBudget) }
                }
            }
            if !buffer.isEmpty { buffer.withUnsafeBufferPointer { _ = EVP_DigestUpdate(ctx, $0.baseAddress, $0.count) } }
        }
    }
}
