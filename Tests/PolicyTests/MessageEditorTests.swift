// SPDX-License-Identifier: Apache-2.0
import MIME
import Policy
import Testing

/// `MessageEditor` models what the MTA does with the milter's requests.
@Suite struct MessageEditorTests {
    let fields = [
        HeaderField(name: "Received", value: " a"),
        HeaderField(name: "Subject", value: " one"),
        HeaderField(name: "X-Tag", value: " 1"),
        HeaderField(name: "x-tag", value: " 2"),
        HeaderField(name: "X-Tag", value: " 3"),
    ]

    @Test func insertAtZeroPutsTheFieldFirst() throws {
        let out = try MessageEditor.apply([.insertField(index: 0, name: "A", value: " 1")], fields: fields, body: []).fields
        #expect(out.first == HeaderField(name: "A", value: " 1"))
        #expect(Array(out.dropFirst()) == fields)
        // Each insertion at 0 goes above the ones before, as with smfi_insheader.
        let two = try MessageEditor.apply([.insertField(index: 0, name: "A", value: " 1"), .insertField(index: 0, name: "B", value: " 2")],
                                      fields: fields, body: []).fields
        #expect(two.prefix(2).map(\.name) == ["B", "A"])
        // An index past the end appends.
        let far = try MessageEditor.apply([.insertField(index: 99, name: "Z", value: " z")], fields: fields, body: []).fields
        #expect(far.last?.name == "Z")
    }

    @Test func changeReplacesTheNthOccurrenceAndKeepsItsPlace() throws {
        let out = try MessageEditor.apply([.changeField(name: "x-TAG", occurrence: 2, value: " two")], fields: fields, body: []).fields
        #expect(out.map(\.value) == [" a", " one", " 1", " two", " 3"])
        #expect(out[3].name == "x-tag")
        let missing = try MessageEditor.apply([.changeField(name: "Subject", occurrence: 2, value: " x")], fields: fields, body: []).fields
        #expect(missing == fields)
    }

    @Test func deletionsChangesAndInsertionsTogether() throws {
        let edits: [MessageEdit] = [
            .deleteField(name: "X-Tag", occurrence: 3), .deleteField(name: "X-Tag", occurrence: 1),
            .changeField(name: "Subject", occurrence: 1, value: " [t] one"),
            .insertField(index: 0, name: "Authentication-Results", value: " h; smime=none"),
        ]
        let out = try MessageEditor.apply(edits, fields: fields, body: []).fields
        #expect(out.map(\.name) == ["Authentication-Results", "Received", "Subject", "x-tag"])
        #expect(out[2].value == " [t] one")
        #expect(out[3].value == " 2")
    }
}
