// SPDX-License-Identifier: Apache-2.0
import FuzzSupport
import MIME

/// Address lists and RFC 2047 encoded-words, as they come from From/To/Subject fields
/// (invalid UTF-8 is decoded with replacement characters, as header values are).
///
/// Checks: parsing never traps and fails only with `MIMEError`; `EncodedWord.encode` is undone
/// by `decode`; a Subject tag put in front by `EncodedWord.prefix` reads back first.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    let value = String(decoding: input, as: UTF8.self)
    do {
        for mailbox in try AddressList.mailboxes(in: value) {
            _ = mailbox.normalisedAddress
            _ = mailbox.description
        }
    } catch is MIMEError {
    } catch {
        fuzzFailure("unexpected error type: \(error)")
    }
    _ = EnvelopeAddress.normalise(value)
    _ = EncodedWord.containsEncodedWords(value)
    let decoded = EncodedWord.decode(value)

    // What we encode, we (and every reader) must decode back.
    for text in [value, decoded] {
        let encoded = EncodedWord.encode(text)
        if EncodedWord.decode(encoded) != text, !encoded.contains("\r"), !encoded.contains("\n") {
            fuzzFailure("decode(encode(x)) != x for \(Array(text.utf8))")
        }
    }
    // The fields a header parser gives for the value must parse the same way.
    if let (fields, _) = try? MessageParser.split(Array("To: ".utf8) + input + Array("\r\n\r\n".utf8)) {
        for field in fields { _ = try? AddressList.mailboxes(in: field.value) }
    }
    for tag in ["[SIGNED]", "[\u{2713} signed]"] where !value.contains("\r") && !value.contains("\n") {
        let tagged = EncodedWord.decode(EncodedWord.prefix(tag, to: value))
        let shown = tagged.drop { $0 == " " || $0 == "\t" }
        if !shown.hasPrefix(tag) {
            fuzzFailure("the subject tag \(tag) does not read back first: \(Array(tagged.utf8.prefix(80)))")
        }
    }
    return 0
}

@_cdecl("FuzzAddress_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzOneInput)
}
