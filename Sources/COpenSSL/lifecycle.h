// SPDX-License-Identifier: Apache-2.0
#ifndef SMIME_MILTER_COPENSSL_LIFECYCLE_H
#define SMIME_MILTER_COPENSSL_LIFECYCLE_H
// Wrappers for the key generation, certificate request and CMP calls of identity enrolment
// that are macros or variadic in OpenSSL 3 (EVP_PKEY_Q_keygen, sk_X509_EXTENSION_*,
// OSSL_CMP_exec_IR_ses/CR_ses).
#include <openssl/cmp.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/// A new RSA key of `bits` bits, or NULL.
static inline EVP_PKEY *smime_keygen_rsa(unsigned int bits) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
}
/// A new EC key on the named curve ("P-256"), or NULL.
static inline EVP_PKEY *smime_keygen_ec(const char *curve) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

static inline STACK_OF(X509_EXTENSION) *smime_sk_X509_EXTENSION_new_null(void) {
    return sk_X509_EXTENSION_new_null();
}
static inline int smime_sk_X509_EXTENSION_push(STACK_OF(X509_EXTENSION) *sk, X509_EXTENSION *ext) {
    return sk_X509_EXTENSION_push(sk, ext);
}
static inline void smime_sk_X509_EXTENSION_pop_free(STACK_OF(X509_EXTENSION) *sk) {
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
}

/// Initial registration (ir) or certification request (cr): the new certificate, or NULL.
static inline X509 *smime_cmp_exec_IR(OSSL_CMP_CTX *ctx) { return OSSL_CMP_exec_IR_ses(ctx); }
static inline X509 *smime_cmp_exec_CR(OSSL_CMP_CTX *ctx) { return OSSL_CMP_exec_CR_ses(ctx); }

/// A CMP log callback that drops OpenSSL's CMP progress lines (errors stay on the error queue).
static inline int smime_cmp_log_quiet(const char *func, const char *file, int line,
                                      OSSL_CMP_severity level, const char *msg) {
    (void)func; (void)file; (void)line; (void)level; (void)msg;
    return 1;
}
static inline int smime_cmp_ctx_quiet(OSSL_CMP_CTX *ctx) { return OSSL_CMP_CTX_set_log_cb(ctx, smime_cmp_log_quiet); }

#endif
