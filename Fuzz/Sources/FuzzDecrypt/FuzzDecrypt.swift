// SPDX-License-Identifier: Apache-2.0
import Foundation
import FuzzSupport
import MIME
import SMIME

/// The envelope path of inbound decryption: a message whose root may be EnvelopedData or
/// AuthEnvelopedData, or a signed root over one (encrypt-then-sign, the triple wrap), opened with the corpus's recipient keys (Bob, Fran, Fran-ec) when
/// ../shared/corpus is there, so mutations reach RecipientInfo matching, key transport and
/// agreement, the content cipher and the nested layers. Every outcome is a DecryptedMessage or a
/// DecryptionFailure; LeakSanitizer checks that OpenSSL objects are freed on every path.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    let limits = MIMELimits(maxDepth: 16, maxParts: 200)
    guard let entity = try? MIMEParser.parse(message: input, limits: limits) else { return 0 }
    var envelope = (fields: entity.fields, body: Array(entity.body))
    if MessageDecryptor.envelope(fields: envelope.fields, body: envelope.body, limits: limits) == nil {
        guard let signed = MessageDecryptor.signedEnvelope(fields: envelope.fields, body: envelope.body, limits: limits) else { return 0 }
        if MessageDecryptor.envelope(fields: signed.fields, body: signed.body, limits: limits) == nil {
            fuzzFailure("signedEnvelope returned an entity that is not an envelope")
        }
        envelope = signed
    }
    do {
        if let opened = try MessageDecryptor.decrypt(fields: envelope.fields, body: envelope.body, candidates: Keys.all,
                                                     allowWeakCiphers: true, maximumSize: 1 << 20, limits: limits) {
            if opened.layers.isEmpty { fuzzFailure("decrypted without a layer") }
            if opened.layers.count > MessageDecryptor.defaultMaximumLayers { fuzzFailure("more layers than the bound") }
        }
    } catch {
        if error.reason.isEmpty { fuzzFailure("a failure without a reason") }
    }
    return 0
}

enum Keys {
    static let all: [SigningIdentity] = {
        let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = fuzz.deletingLastPathComponent().appendingPathComponent("../shared/corpus/keys/comm-central").path
        let scratch = NSTemporaryDirectory() + "/fuzz-decrypt-keys-\(getpid())"
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        var keys: [SigningIdentity] = []
        for name in ["Bob", "Fran", "Fran-ec"] {
            let key = scratch + "/\(name).key"
            // The corpus is read-only; the loader wants a private key file.
            try? FileManager.default.copyItem(atPath: dir + "/\(name).key", toPath: key)
            try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
            if let identity = try? IdentityLoader.loadPEM(name: name, certificateFile: dir + "/\(name).crt", keyFile: key,
                                                          allowExpired: true, forDecryption: true) {
                keys.append(identity)
            }
        }
        return keys
    }()
}

@_cdecl("FuzzDecrypt_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzOneInput)
}
