// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Dispatch
import Foundation

/// The process's way to PKCS#11 tokens: OpenSSL 3's pkcs11 ENGINE (libp11).
///
/// Why the engine: on Debian 12 it is the packaged route (libengine-pkcs11-openssl);
/// pkcs11-provider is not packaged there. Only `TokenKey` and this type know about it, so an
/// OSSL_STORE/provider backend can replace it without touching the signer.
///
/// Concurrency: libp11 0.4.12 keeps a pool of sessions per slot (opened on demand, up to 16,
/// waited for when all are busy) and signs concurrently with one EVP_PKEY; we bound the
/// signatures in flight to `TokenSessions` with a semaphore, so at most that many sessions
/// are used. Signing holds the `epoch` lock shared; re-opening holds it exclusively, so no
/// signature runs on a context being replaced.
///
/// Recovery: libp11 caches slots, sessions and key handles in its context and never refreshes
/// them, and a token that went away can leave the module stuck (SoftHSM then answers every
/// call with an error). After a token failure, and on reload, the next use finalises the
/// module (C_Finalize) and makes a fresh engine instance; keys are loaded again from their
/// URIs. The old instance and its keys are abandoned, not freed: freeing them could reach the
/// module with stale handles. That leaks a few kilobytes per outage or reload.
final class PKCS11Engine: @unchecked Sendable {
    /// The one instance (a process has one OpenSSL and one module per path).
    static let shared = PKCS11Engine()

    private let lock = NSLock()
    /// Held shared while signing or loading, exclusively while re-opening.
    private let epochLock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    /// Serialises key loads: the PIN is set on the engine just before each load.
    private let loadLock = NSLock()
    private var engine: OpaquePointer?
    private var modulePath: String?
    /// Bumped at every re-open; keys loaded in an older generation are stale.
    private(set) var generation = 0
    /// Set by a failure: re-open before the next load.
    private var broken = false
    private var sessions: DispatchSemaphore
    private var sessionCount: Int
    /// How long a signature waits for a free session before the message is tempfailed.
    static let sessionWait: DispatchTimeInterval = .seconds(30)

    private init() {
        pthread_rwlock_init(epochLock, nil)
        sessionCount = 4
        sessions = DispatchSemaphore(value: 4)
    }

    /// Applies the settings of a (re)loaded configuration. The module cannot change in a
    /// running process (it stays loaded): a different path is reported as a problem.
    func configure(_ settings: TokenSettings) -> String? {
        lock.lock()
        defer { lock.unlock() }
        let wanted = settings.resolvedModulePath
        var problem: String?
        if let modulePath, modulePath != wanted {
            problem = "PKCS11Module changed to \(wanted); \(modulePath) stays in use until a restart"
        } else {
            modulePath = wanted
        }
        let count = max(1, settings.sessions)
        if count != sessionCount {
            // Signers in flight signal the semaphore they waited on; new ones use this one.
            sessions = DispatchSemaphore(value: count)
            sessionCount = count
        }
        return problem
    }

    /// Marks the engine for re-opening before the next key load (after a token failure, and
    /// on reload so that new token objects are seen).
    func markBroken() {
        lock.lock()
        broken = true
        lock.unlock()
    }

    /// Runs `body` holding a session permit and the shared epoch lock, with the generation
    /// in force. Throws when no session frees up within `sessionWait`.
    func withSession<T>(_ body: (_ generation: Int) throws -> T) throws -> T {
        let (semaphore, count) = lock.withLock { (sessions, sessionCount) }
        guard semaphore.wait(timeout: .now() + Self.sessionWait) == .success else {
            throw SMIMEError(.tokenUnavailable, "no free token session within 30 s (TokenSessions \(count))")
        }
        defer { semaphore.signal() }
        reopenIfBroken()
        pthread_rwlock_rdlock(epochLock)
        defer { pthread_rwlock_unlock(epochLock) }
        return try body(lock.withLock { generation })
    }

    /// Loads the key named by `uri` with `pin` (the caller zeroes its copy). Call within
    /// `withSession`. Returns the owned EVP_PKEY, or throws with the engine's error queue.
    func loadKey(uri: PKCS11URI, pin: [UInt8]?) throws -> OpaquePointer {
        loadLock.lock()
        defer { loadLock.unlock() }
        ERR_clear_error()
        guard let engine = try currentEngine() else {
            throw SMIMEError(.tokenUnavailable, "cannot load OpenSSL's pkcs11 engine (install libengine-pkcs11-openssl)",
                             openSSLErrors: OpenSSL.drainErrors())
        }
        var secret: [CChar] = (pin ?? []).map { CChar(bitPattern: $0) } + [0]
        defer { for index in secret.indices { secret[index] = 0 } }
        let key: OpaquePointer? = pin == nil
            ? smime_pkcs11_load_key(engine, uri.engineURI, nil)
            : secret.withUnsafeBufferPointer { smime_pkcs11_load_key(engine, uri.engineURI, $0.baseAddress) }
        guard let key else {
            // SoftHSM initialises its own OpenSSL engines (rdrand, gost) when the module starts;
            // those failed lookups are not why the key did not load.
            let errors = OpenSSL.drainErrors().filter {
                !$0.contains("DSO support routines") && !$0.contains("dso not found") && !$0.contains("no such engine")
            }
            markBroken()
            if errors.contains(where: { $0.contains("PIN incorrect") || $0.contains("PIN locked") || $0.contains("PIN len") }) {
                throw SMIMEError(.tokenPINRefused, "the token refused the PIN", openSSLErrors: errors)
            }
            throw SMIMEError(.tokenUnavailable, "the token does not answer or has no such key", openSSLErrors: errors)
        }
        return key
    }

    /// The engine instance in force, made on first use. Called with `loadLock` held.
    private func currentEngine() throws -> OpaquePointer? {
        lock.lock()
        defer { lock.unlock() }
        if engine == nil {
            engine = smime_pkcs11_engine_new(modulePath ?? TokenSettings().resolvedModulePath)
            // Loading leaves lookups that failed on the way in the queue; only the load's own count.
            if engine != nil { ERR_clear_error() }
        }
        return engine
    }

    /// Re-opens the module when a failure asked for it: waits until no signature runs,
    /// finalises the module and drops the engine instance (a new one is made on the next load).
    private func reopenIfBroken() {
        let needed: Bool = lock.withLock {
            // Nothing is open yet: the next load opens the module afresh anyway.
            if broken && engine == nil { broken = false }
            return broken
        }
        guard needed else { return }
        pthread_rwlock_wrlock(epochLock)
        defer { pthread_rwlock_unlock(epochLock) }
        loadLock.lock()
        defer { loadLock.unlock() }
        lock.lock()
        defer { lock.unlock() }
        guard broken, engine != nil else { return }
        if let modulePath { _ = smime_pkcs11_finalize(modulePath) }
        engine = nil  // abandoned, see the type's comment
        generation += 1
        broken = false
        ERR_clear_error()
    }

    deinit {
        pthread_rwlock_destroy(epochLock)
        epochLock.deallocate()
    }
}
