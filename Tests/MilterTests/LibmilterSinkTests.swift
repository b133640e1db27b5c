// SPDX-License-Identifier: Apache-2.0
@testable import Milter
import Testing

/// What the libmilter sink hands libmilter, for the parts that need no MTA.
@Suite struct LibmilterSinkTests {
    @Test func replyTextIsOnePrintableLineWithPercentDoubled() {
        #expect(LibmilterSink.replyText("100% sure\r\nnext line\u{7}é") == "100%% sure  next line  ")
        #expect(LibmilterSink.replyText(String(repeating: "x", count: 500)).count == 400)
    }

    @Test func headerValuesGoWithBareLFFoldsAndTheNegotiatedLeadingSpace() throws {
        let ctx = try #require(OpaquePointer(bitPattern: 1))   // never dereferenced by wireValue
        #expect(LibmilterSink(ctx: ctx, leadingSpace: false).wireValue(" a;\r\n\tb") == "a;\n\tb")
        #expect(LibmilterSink(ctx: ctx, leadingSpace: true).wireValue(" a;\r\n\tb") == " a;\n\tb")
    }
}
