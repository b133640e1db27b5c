// SPDX-License-Identifier: Apache-2.0
#ifndef SMIME_MILTER_COPENSSL_SHIM_H
#define SMIME_MILTER_COPENSSL_SHIM_H
// OpenSSL headers, plus static inline wrappers for the function-like macros
// Swift cannot import (sk_X509_* helpers, BIO_get_mem_data, ...).
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/x509_vfy.h>

// MARK: STACK_OF(X509)

static inline STACK_OF(X509) *smime_sk_X509_new_null(void) { return sk_X509_new_null(); }
static inline int smime_sk_X509_num(const STACK_OF(X509) *sk) { return sk_X509_num(sk); }
static inline X509 *smime_sk_X509_value(const STACK_OF(X509) *sk, int i) { return sk_X509_value(sk, i); }
/// Pushes x without taking an extra reference: the stack owns the reference the caller had.
static inline int smime_sk_X509_push(STACK_OF(X509) *sk, X509 *x) { return sk_X509_push(sk, x); }
/// Frees the stack and drops one reference of every certificate in it.
static inline void smime_sk_X509_pop_free(STACK_OF(X509) *sk) { sk_X509_pop_free(sk, X509_free); }

// MARK: GENERAL_NAMES (subjectAltName)

static inline int smime_sk_GENERAL_NAME_num(const GENERAL_NAMES *sk) { return sk_GENERAL_NAME_num(sk); }
static inline GENERAL_NAME *smime_sk_GENERAL_NAME_value(const GENERAL_NAMES *sk, int i) {
    return sk_GENERAL_NAME_value(sk, i);
}

/// The rfc822Name of a GeneralName, or NULL when it is another kind of name.
static inline const ASN1_STRING *smime_general_name_rfc822(const GENERAL_NAME *gen) {
    if (gen == NULL || gen->type != GEN_EMAIL) return NULL;
    return gen->d.rfc822Name;
}

/// The SmtpUTF8Mailbox otherName (RFC 9598) of a GeneralName, or NULL.
static inline const ASN1_STRING *smime_general_name_smtputf8(GENERAL_NAME *gen) {
    ASN1_OBJECT *oid = NULL;
    ASN1_TYPE *value = NULL;
    if (gen == NULL || gen->type != GEN_OTHERNAME) return NULL;
    if (!GENERAL_NAME_get0_otherName(gen, &oid, &value)) return NULL;
    if (oid == NULL || value == NULL || OBJ_obj2nid(oid) != NID_id_on_SmtpUTF8Mailbox) return NULL;
    if (value->type != V_ASN1_UTF8STRING) return NULL;
    return value->value.utf8string;
}

// MARK: misc macros

static inline long smime_BIO_get_mem_data(BIO *b, char **pp) { return BIO_get_mem_data(b, pp); }
static inline void smime_OPENSSL_free(void *p) { OPENSSL_free(p); }

/// RFC 2253 one-line names with UTF-8 kept as UTF-8 (like `-nameopt RFC2253,-esc_msb`).
static inline unsigned long smime_name_flags_rfc2253_utf8(void) {
    return XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
}

// MARK: verification (CMS SignerInfos, CRL and X509_INFO stacks, error codes)

static inline int smime_sk_CMS_SignerInfo_num(STACK_OF(CMS_SignerInfo) *sk) { return sk_CMS_SignerInfo_num(sk); }
static inline CMS_SignerInfo *smime_sk_CMS_SignerInfo_value(STACK_OF(CMS_SignerInfo) *sk, int i) {
    return sk_CMS_SignerInfo_value(sk, i);
}
/// Frees only the stack, not the certificates (for stacks holding borrowed pointers).
static inline void smime_sk_X509_free(STACK_OF(X509) *sk) { sk_X509_free(sk); }
static inline int smime_sk_X509_CRL_num(const STACK_OF(X509_CRL) *sk) { return sk_X509_CRL_num(sk); }
static inline X509_CRL *smime_sk_X509_CRL_value(const STACK_OF(X509_CRL) *sk, int i) { return sk_X509_CRL_value(sk, i); }
static inline void smime_sk_X509_CRL_pop_free(STACK_OF(X509_CRL) *sk) { sk_X509_CRL_pop_free(sk, X509_CRL_free); }
static inline int smime_sk_X509_INFO_num(const STACK_OF(X509_INFO) *sk) { return sk_X509_INFO_num(sk); }
static inline X509 *smime_sk_X509_INFO_cert(const STACK_OF(X509_INFO) *sk, int i) {
    X509_INFO *info = sk_X509_INFO_value(sk, i);
    return info == NULL ? NULL : info->x509;
}
static inline X509_CRL *smime_sk_X509_INFO_crl(const STACK_OF(X509_INFO) *sk, int i) {
    X509_INFO *info = sk_X509_INFO_value(sk, i);
    return info == NULL ? NULL : info->crl;
}
static inline void smime_sk_X509_INFO_pop_free(STACK_OF(X509_INFO) *sk) { sk_X509_INFO_pop_free(sk, X509_INFO_free); }
static inline int smime_ERR_GET_LIB(unsigned long code) { return ERR_GET_LIB(code); }
static inline int smime_ERR_GET_REASON(unsigned long code) { return ERR_GET_REASON(code); }
/// The eContent OCTET STRING of a SignedData, or NULL when it is absent (detached).
static inline const ASN1_OCTET_STRING *smime_CMS_econtent(CMS_ContentInfo *cms) {
    ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
    return pos == NULL ? NULL : *pos;
}

// MARK: encryption (SMIMECapabilities as X509_ALGORS)

static inline int smime_sk_X509_ALGOR_num(const STACK_OF(X509_ALGOR) *sk) { return sk_X509_ALGOR_num(sk); }
static inline X509_ALGOR *smime_sk_X509_ALGOR_value(const STACK_OF(X509_ALGOR) *sk, int i) {
    return sk_X509_ALGOR_value(sk, i);
}
static inline void smime_sk_X509_ALGOR_pop_free(STACK_OF(X509_ALGOR) *sk) { sk_X509_ALGOR_pop_free(sk, X509_ALGOR_free); }

#endif
