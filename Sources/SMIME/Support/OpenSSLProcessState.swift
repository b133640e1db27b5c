// SPDX-License-Identifier: Apache-2.0
import COpenSSL

/// How OpenSSL's process-wide state ends.
public enum OpenSSLProcessState {
    /// Keeps OpenSSL's global state (providers, method stores, their locks) until the process
    /// is gone: no clean-up from an atexit handler.
    ///
    /// By default OpenSSL frees that state when `exit` runs. A daemon with worker threads can
    /// exit while one of them is still in libcrypto (a message past the drain's time, a reload,
    /// a revocation fetch), which then used freed locks and names: smime-milter stopped under
    /// load died of SIGSEGV in libcrypto and libc about one stop in ten. Must be the first
    /// OpenSSL call of the process (the choice is made once, at OpenSSL's initialisation).
    /// Returns false when OpenSSL refused to initialise.
    @discardableResult
    public static func keepUntilExit() -> Bool {
        OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil) == 1
    }
}
