// SPDX-License-Identifier: Apache-2.0
import FuzzSupport
import Policy

/// The configuration file and the table files (SigningTable, SenderMap, InternalHosts,
/// RequireSignature): every input goes through each parser, which must return a value or a
/// `ConfigurationError` naming the file, never trap. The file name is in a directory that does
/// not exist, so relative table paths in a configuration are never found.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: bytes(data, size), as: UTF8.self)
    let file = "/nonexistent-fuzz/smime-milter.conf"
    check { _ = try ConfigurationParser.parse(contents: text, file: file) }
    check {
        let table = try SigningTable.parse(contents: text, file: file)
        for address in ["alice@example.com", "x@sub.example.com", ""] { _ = table.lookup(address) }
    }
    check {
        let map = try SenderMap.parse(contents: text, file: file)
        _ = map.allows(login: "alice", address: "alice@example.com")
    }
    check {
        let list = try NetworkList.parse(contents: text, file: file)
        for address in ["127.0.0.1", "::1", "192.0.2.66", "2001:db8:1::5", "::ffff:192.0.2.1", "garbage"] {
            _ = list.contains(address)
        }
    }
    check {
        let required = try RequiredSigners.parse(contents: text, file: file)
        _ = required.requires("alerts@bank.example")
    }
    return 0
}

private func check(_ body: () throws -> Void) {
    do {
        try body()
    } catch let error as ConfigurationError {
        _ = error.description
    } catch {
        fuzzFailure("unexpected error type: \(error)")
    }
}

@_cdecl("FuzzConfig_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzOneInput)
}
