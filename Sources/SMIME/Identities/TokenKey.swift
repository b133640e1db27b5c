// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// A private key that stays on a PKCS#11 token, reached through `PKCS11Engine`.
///
/// The EVP_PKEY handle is loaded on first use and again after the engine re-opened the token
/// (a new generation). A failed signature marks the engine for re-opening, so the next
/// message gets a fresh session and login; the failed one is tempfailed by the caller
/// (`OnError`). A refused PIN is never tried again by this key: tokens lock the PIN after a
/// few wrong tries; a reload (new PIN file) makes a new key.
public final class TokenKey: @unchecked Sendable {
    /// The key's URI (no secret in it).
    public let uri: PKCS11URI
    private let settings: TokenSettings
    private let engine: PKCS11Engine
    private let lock = NSLock()
    /// The handle and the generation it was loaded in. Handles of older generations are
    /// abandoned with their engine instance.
    private var loaded: (generation: Int, key: OpaquePointer)?
    private var pinRefused: SMIMEError?

    init(uri: PKCS11URI, settings: TokenSettings, engine: PKCS11Engine = .shared) {
        self.uri = uri
        self.settings = settings
        self.engine = engine
    }

    /// Runs `body` with the token key, holding one token session. A failure of `body`
    /// marks the token for re-opening and is rethrown as `.tokenUnavailable`.
    func withKey<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        try engine.withSession { generation in
            let key = try handle(generation: generation)
            do {
                return try body(key)
            } catch {
                engine.markBroken()
                throw SMIMEError(.tokenUnavailable, "the token did not sign with \(uri) (its session is re-opened "
                                 + "for the next message): \(error)")
            }
        }
    }

    /// Whether the token answers now: loads the key if needed (a login).
    public func probe() -> String? {
        do {
            try withKey { _ in () }
            return nil
        } catch {
            return "\(error)"
        }
    }

    private func handle(generation: Int) throws -> OpaquePointer {
        lock.lock()
        defer { lock.unlock() }
        if let pinRefused { throw pinRefused }
        if let loaded, loaded.generation == generation { return loaded.key }
        var pin: [UInt8]?
        do {
            pin = try settings.readPIN()
        } catch {
            throw SMIMEError(.tokenUnavailable, "\(error)")
        }
        defer { if pin != nil { for index in pin!.indices { pin![index] = 0 } } }
        do {
            let key = try engine.loadKey(uri: uri, pin: pin)
            loaded = (generation, key)
            return key
        } catch let error as SMIMEError where error.kind == .tokenPINRefused {
            pinRefused = error
            throw error
        }
    }
}

extension TokenSettings {
    /// Puts these settings in force for the process's token access (module, session bound).
    /// Returns a problem to report when the module cannot change without a restart.
    public func apply() -> String? {
        PKCS11Engine.shared.configure(self)
    }

    /// Makes the next token use re-open the module and log in again, so that a reload sees
    /// keys added to the token since (libp11 lists a token's objects only once per context).
    public static func reopenTokensOnNextUse() {
        PKCS11Engine.shared.markBroken()
    }
}
