// SPDX-License-Identifier: Apache-2.0
import Dispatch
import Foundation
import Testing
@testable import SMIME

/// The runner of outside programs (EnrollCommand, RevokeCommand, SendmailCommand).
@Suite("BoundedCommand")
struct BoundedCommandTests {
    @Test func inputAndOutputFlowBothWaysAtOnce() throws {
        // 3 MB through cat: more than a pipe holds in either direction, so this only finishes
        // when writing and reading are interleaved.
        let input = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        let result = try BoundedCommand.run(["/bin/cat"], input: input, timeout: 120, outputLimit: 4 << 20)
        #expect(result.status == 0)
        #expect(!result.timedOut)
        #expect(result.output == input)
        #expect(!result.outputTruncated)
    }

    @Test func statusAndStandardErrorAreKept() throws {
        let result = try BoundedCommand.run(["/bin/sh", "-c", "echo out; echo 'no such CA' >&2; exit 7"], input: [], timeout: 60)
        #expect(result.status == 7)
        #expect(result.signal == nil)
        #expect(String(decoding: result.output, as: UTF8.self) == "out\n")
        #expect(String(decoding: result.errors, as: UTF8.self) == "no such CA\n")
    }

    @Test func aProgramThatIgnoresItsInputDoesNotBlockUs() throws {
        let result = try BoundedCommand.run(["/bin/true"], input: [UInt8](repeating: 65, count: 1 << 20), timeout: 60)
        #expect(result.status == 0)
        #expect(!result.timedOut)
    }

    @Test func theDeadlineKillsAHangingProgram() throws {
        let started = Date()
        let result = try BoundedCommand.run(["/bin/sleep", "600"], input: [], timeout: 1)
        #expect(result.timedOut)
        #expect(result.status == -1)
        // Behaviour, not speed: killed long before the program would have ended by itself.
        #expect(Date().timeIntervalSince(started) < 300)
    }

    @Test func aKilledProgramReportsItsSignal() throws {
        let result = try BoundedCommand.run(["/bin/sh", "-c", "kill -TERM $$"], input: [], timeout: 60)
        #expect(result.signal == SIGTERM)
        #expect(!result.timedOut)
    }

    @Test func outputBeyondTheLimitIsCutAndSaidSo() throws {
        let result = try BoundedCommand.run(["/bin/sh", "-c", "head -c 100000 /dev/zero"], input: [], timeout: 60, outputLimit: 1000)
        #expect(result.status == 0)
        #expect(result.output.count == 1000)
        #expect(result.outputTruncated)
    }

    @Test func theProgramGetsNoneOfOurDescriptors() throws {
        let stray = open("/etc/hostname", O_RDONLY)   // not close-on-exec
        defer { close(stray) }
        #expect(stray > 2)
        let result = try BoundedCommand.run(["/bin/ls", "/proc/self/fd"], input: [], timeout: 60)
        let descriptors = Set(String(decoding: result.output, as: UTF8.self).split(separator: "\n").compactMap { Int($0) })
        // 0, 1, 2 and the one ls opened to read the directory.
        #expect(descriptors.isSubset(of: [0, 1, 2, 3]))
        #expect(!descriptors.contains(Int(stray)) || stray == 3)
    }

    @Test func aMissingProgramIsALaunchError() {
        #expect(throws: BoundedCommand.LaunchError.self) {
            try BoundedCommand.run(["/nonexistent/ca-script"], input: [], timeout: 60)
        }
    }

    /// The failure seen under AddressSanitizer in CI: with every thread of the global dispatch
    /// queue busy, a Foundation `Process` whose pipes are fed from that queue never got its input
    /// and timed out. This runner must not depend on that queue.
    @Test func busyDispatchThreadsDoNotStallARun() throws {
        let release = DispatchSemaphore(value: 0)
        let blockers = 256
        for _ in 0..<blockers { DispatchQueue.global().async { release.wait() } }
        defer { for _ in 0..<blockers { release.signal() } }
        let result = try BoundedCommand.run(["/bin/sh", "-c", "cat >/dev/null; echo done"], input: Array("request".utf8), timeout: 120)
        #expect(result.status == 0)
        #expect(!result.timedOut)
        #expect(String(decoding: result.output, as: UTF8.self) == "done\n")
    }
}
