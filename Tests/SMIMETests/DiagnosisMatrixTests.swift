// SPDX-License-Identifier: Apache-2.0
import Foundation
import MIME
import Testing
@testable import SMIME

/// The generated matrix (Support/DiagnosisMatrix.swift): cause × position × encoding × line
/// ends, and pairs of causes; every case must be confirmed with exactly its causes, within the
/// default budget. `swift test` runs a fixed sample (every seventh case); all of them:
///
///     DIAGNOSIS_MATRIX=all swift test --filter DiagnosisMatrix
///
/// which also prints the rate per cause (the table in docs/diagnosis.md).
@Suite("Diagnosis: generated matrix")
struct DiagnosisMatrixTests {
    static let runAll = ProcessInfo.processInfo.environment["DIAGNOSIS_MATRIX"] == "all"

    static var cases: [DiagnosisMatrix.Case] {
        runAll ? DiagnosisMatrix.all : DiagnosisMatrix.all.enumerated().filter { $0.offset % 7 == 0 }.map(\.element)
    }

    static func sameCauses(_ found: [DiagnosisCause], _ expected: [DiagnosisCause]) -> Bool {
        found.count == expected.count && expected.allSatisfy { found.contains($0) }
    }

    @Test func everyCaseIsConfirmedWithItsCauses() throws {
        let verifier = try Breakage.verifier()
        var rows: [String: (total: Int, confirmed: Int, digests: Int)] = [:]
        var failures: [String] = []
        for item in Self.cases {
            let message: [UInt8]
            do { message = try DiagnosisMatrix.message(item) } catch {
                failures.append("\(item): cannot make the case: \(error)")
                continue
            }
            let report = verifier.verify(message: message, at: Date())
            let expected = item.changes.map(\.cause)
            let diagnosis = report.diagnosis
            let ok = report.result == .fail && diagnosis?.confidence == .confirmed
                && Self.sameCauses(diagnosis?.causes ?? [], expected)
                && (diagnosis?.digestComputations ?? .max) <= DiagnosisOptions().maxDigestComputations
            var row = rows[item.label] ?? (0, 0, 0)
            row.total += 1
            if ok { row.confirmed += 1; row.digests = max(row.digests, diagnosis?.digestComputations ?? 0) }
            rows[item.label] = row
            if !ok { failures.append("\(item): \(report.result) \(diagnosis.map { "\($0.description): \($0.detail)" } ?? report.reason ?? "")") }
        }
        print("diagnosis matrix: \(Self.cases.count) cases\n| cause | cases | confirmed | rate | most digests |\n|---|---|---|---|---|")
        for (label, row) in rows.sorted(by: { $0.key < $1.key }) {
            let rate = String(format: "%.0f%%", 100 * Double(row.confirmed) / Double(max(1, row.total)))
            print("| \(label) | \(row.total) | \(row.confirmed) | \(rate) | \(row.digests) |")
        }
        #expect(Self.cases.count >= (Self.runAll ? 300 : 40))
        let listed = failures.prefix(60).joined(separator: "\n")
        #expect(failures.isEmpty, "\(failures.count) of \(Self.cases.count) not confirmed:\n\(listed)")
    }

    /// A tool that decoded a base64 text part, appended its footer and encoded it again at its
    /// own line length (76) where the signer used 72.
    @Test func base64FooterEncodedAgainAtAnotherLineLength() throws {
        let text = Array(DiagnosisMatrix.text(.eightBit).utf8)
        let entity = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + String(decoding: Base64Lines.encode(text, lineLength: 72), as: UTF8.self) + "\r\n"
        let message = try Breakage.editSigned(try Breakage.signed(entity)) { part in
            let split = part.range(of: "\r\n\r\n")!
            let footered = text + Array(DiagnosisMatrix.footer.utf8)
            return String(part[..<split.upperBound]) + String(decoding: Base64Lines.encode(footered, lineLength: 76), as: UTF8.self) + "\r\n"
        }
        try DiagnosisTests.expectConfirmed(message, .textAppended, footer: "Example Corp, Sample Street 1")
    }

    /// format=flowed text whose soft line breaks lost their spaces (a gateway stripping trailing
    /// white space), inside a multipart/alternative.
    @Test func flowedSoftBreaksStripped() throws {
        // Soft breaks where Thunderbird wraps (about 72 columns); the short lines are hard breaks.
        let flowed = "Hallo Bob,\r\n\r\nthe figures for March are below, and the long paragraph goes on over \r\n"
            + "several lines as Thunderbird wraps it at seventy-two characters, with a \r\nspace before each soft break.\r\n"
            + "\r\nShort line\r\nanother\r\n\r\n-- \r\nAlice\r\n"
        let entity = "Content-Type: multipart/alternative; boundary=\"a\"\r\n\r\n--a\r\n"
            + "Content-Type: text/plain; charset=us-ascii; format=flowed\r\n\r\n" + flowed
            + "--a\r\nContent-Type: text/html\r\n\r\n<p>Hallo</p>\r\n--a--\r\n"
        let message = try Breakage.editSigned(try Breakage.signed(entity)) { $0.replacingOccurrences(of: " \r\n", with: "\r\n") }
        try DiagnosisTests.expectConfirmed(message, .trailingWhitespaceStripped)
    }

    /// Random corruption of the same seeds is never confirmed.
    @Test func randomCorruptionIsNeverConfirmed() throws {
        let verifier = try Breakage.verifier()
        var generator = SplitMix(seed: 15)
        var checked = 0
        for seed in DiagnosisMatrix.Seed.allCases {
            for encoding in DiagnosisMatrix.Encoding.allCases {
                let message = try DiagnosisMatrix.intact(seed, encoding)
                let range = try Breakage.signedRange(message)
                for _ in 0..<(Self.runAll ? 24 : 3) {
                    var broken = message
                    let position = range.lowerBound + Int(generator.next() % UInt64(range.count))
                    // Any byte but a line end, changed to another printable one.
                    guard broken[position] != 0x0D, broken[position] != 0x0A else { continue }
                    broken[position] = broken[position] == 0x78 ? 0x79 : 0x78
                    let report = verifier.verify(message: broken, at: Date())
                    guard report.result == .fail, let diagnosis = report.diagnosis else { continue }
                    #expect(diagnosis.confidence != .confirmed, "\(seed)/\(encoding) byte \(position): \(diagnosis)")
                    #expect(diagnosis.digestComputations <= DiagnosisOptions().maxDigestComputations)
                    checked += 1
                }
            }
        }
        #expect(checked >= 20)
    }
}

/// A small deterministic generator (SplitMix64), so the corruption cases are the same every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
