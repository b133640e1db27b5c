// SPDX-License-Identifier: Apache-2.0
import Foundation
@testable import smime_milter
import Testing

@Suite struct EnrolmentReportTests {
    func temporaryDirectory() -> String {
        let dir = NSTemporaryDirectory() + "enrolment-report-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func stateCountsEnrolmentsNotDepartures() {
        let state = LifecycleState(directory: temporaryDirectory())
        let now = Date()
        state.record(address: "a@example.org", result: .init(time: now, ok: true, message: "new done, serial 01", backend: "EnrollCommand"), enrolment: true)
        state.record(address: "a@example.org", result: .init(time: now, ok: false, message: "renewal failed: CA refused: bad request", backend: "EnrollCommand"), enrolment: true)
        state.record(address: "a@example.org", result: .init(time: now, ok: true, message: "renewal done, serial 02", backend: "EnrollCommand"), enrolment: true)
        state.record(address: "a@example.org", result: .init(time: now, ok: true, message: "removed: left the directory", backend: "EnrollCommand", removed: now))
        let read = state.read()["a@example.org"]
        #expect(read?.succeeded == 2)
        #expect(read?.failed == 1)
    }

    @Test func reportsSayWhatFailedAndWhyFirst() {
        let now = Date()
        let states: [String: LifecycleState.Result] = [
            "a@example.org": .init(time: now, ok: true, message: "renewal done, serial 02", backend: "CMP", succeeded: 1, failed: 0),
            "b@example.org": .init(time: now, ok: false, message: "renewal failed: the CA answered: rejection", backend: "CMP", succeeded: 0, failed: 1),
            "old@example.org": .init(time: now.addingTimeInterval(-3 * 86_400), ok: false, message: "renewal failed: x", backend: "CMP"),
        ]
        let reports = ExpiryMonitor.enrolmentReports(states, now: now)
        #expect(reports.count == 2)
        #expect(reports.first?.failed == true)
        #expect(reports.first?.text.contains("b@example.org") == true)
        #expect(reports.first?.text.contains("the CA answered: rejection") == true)
        #expect(reports.last?.text.contains("renewal done, serial 02") == true)
        #expect(Set(reports.map(\.key)).count == 2)
    }
}
