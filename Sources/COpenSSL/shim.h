// SPDX-License-Identifier: Apache-2.0
#ifndef SMIME_MILTER_COPENSSL_SHIM_H
#define SMIME_MILTER_COPENSSL_SHIM_H
// OpenSSL headers, plus static inline wrappers for the function-like macros
// Swift cannot import (sk_X509_* helpers, BIO_get_mem_data, ...).
// The ENGINE API is deprecated in OpenSSL 3 but is the only way to a PKCS#11 token on Debian 12
// (libengine-pkcs11-openssl; pkcs11-provider is not packaged there): keep its declarations usable.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <dlfcn.h>
#include <stdlib.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ess.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/http.h>
#include <openssl/ocsp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/ui.h>
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
/* The DER of OpenSSL's default SMIMECapabilities (what CMS_add1_signer adds without
   CMS_NOSMIMECAP), allocated into *out; the length, or 0. */
static inline int smime_standard_smimecap_der(unsigned char **out) {
    STACK_OF(X509_ALGOR) *smcap = NULL;
    int len = 0;
    if (CMS_add_standard_smimecap(&smcap)) len = i2d_X509_ALGORS(smcap, out);
    sk_X509_ALGOR_pop_free(smcap, X509_ALGOR_free);
    return len > 0 ? len : 0;
}
/* The DER of the ESS signingCertificateV2 attribute value that CMS_add1_signer adds with
   CMS_CADES for `cert` and digest `md` (certificate hash and issuer/serial), into *out. */
static inline int smime_ess_signing_cert_v2_der(const EVP_MD *md, X509 *cert, unsigned char **out) {
    ESS_SIGNING_CERT_V2 *sc = OSSL_ESS_signing_cert_v2_new_init(md, cert, NULL, 1);
    int len = 0;
    if (sc != NULL) len = i2d_ESS_SIGNING_CERT_V2(sc, out);
    ESS_SIGNING_CERT_V2_free(sc);
    return len > 0 ? len : 0;
}

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

// MARK: PKCS#11 tokens through the pkcs11 engine (libp11)

/// The pkcs11 engine as OpenSSL loads it (structural reference, loaded once per process).
static inline ENGINE *smime_pkcs11_engine_prototype(void) {
    static ENGINE *prototype = NULL;
    // Called with the caller's token lock held: no race on the static.
    if (prototype == NULL) prototype = ENGINE_by_id("pkcs11");
    return prototype;
}

/// A new, private instance of the pkcs11 engine, set to load `module_path`, quiet (libp11 would
/// print object URIs to stderr), and initialised. It shares libp11's code with the loaded
/// engine but has a libp11 context of its own (libp11 keeps it in the ENGINE's ex_data, made on
/// first use), so a broken token can be re-opened with a fresh context: libp11 caches slots,
/// sessions and key handles in its context and never lets go of them while it lives (and the
/// dynamic engine loader refuses to load the same engine twice). NULL on failure (see the queue).
static inline ENGINE *smime_pkcs11_engine_new(const char *module_path) {
    ENGINE *proto = smime_pkcs11_engine_prototype();
    if (proto == NULL) return NULL;
    ENGINE *e = ENGINE_new();
    if (e == NULL) return NULL;
    if (!ENGINE_set_id(e, ENGINE_get_id(proto)) || !ENGINE_set_name(e, ENGINE_get_name(proto))
        || !ENGINE_set_init_function(e, ENGINE_get_init_function(proto))
        || !ENGINE_set_finish_function(e, ENGINE_get_finish_function(proto))
        || !ENGINE_set_ctrl_function(e, ENGINE_get_ctrl_function(proto))
        || !ENGINE_set_cmd_defns(e, ENGINE_get_cmd_defns(proto))
        || !ENGINE_set_load_privkey_function(e, ENGINE_get_load_privkey_function(proto))
        || !ENGINE_set_load_pubkey_function(e, ENGINE_get_load_pubkey_function(proto))
        || !ENGINE_set_RSA(e, ENGINE_get_RSA(proto))
        || !ENGINE_set_EC(e, ENGINE_get_EC(proto))
        || !ENGINE_set_pkey_meths(e, ENGINE_get_pkey_meths(proto))
        || !ENGINE_ctrl_cmd_string(e, "QUIET", NULL, 0)
        || !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module_path, 0)
        || !ENGINE_init(e)) {
        ENGINE_free(e);
        return NULL;
    }
    return e;
}

/// A UI method that never asks anyone: a token that wants a PIN we did not give fails to log in
/// instead of prompting on a terminal the milter does not have.
static inline int smime_ui_refuse(UI *ui, UI_STRING *uis) { (void)ui; (void)uis; return 0; }
static inline UI_METHOD *smime_ui_method_refusing(void) {
    static UI_METHOD *method = NULL;
    // Made once, before the first token key is loaded (loads are serialised by the caller).
    if (method == NULL) {
        method = UI_create_method("smime-milter: no prompts");
        if (method != NULL) UI_method_set_reader(method, smime_ui_refuse);
    }
    return method;
}

/// Loads the private key named by `uri`, logging in with `pin` (may be NULL: no login data).
static inline EVP_PKEY *smime_pkcs11_load_key(ENGINE *e, const char *uri, const char *pin) {
    if (pin != NULL && !ENGINE_ctrl_cmd_string(e, "PIN", pin, 0)) return NULL;
    return ENGINE_load_private_key(e, uri, smime_ui_method_refusing(), NULL);
}

/// Ends every session of the PKCS#11 module at `module_path` that this process has (C_Finalize
/// through the module already loaded, never loading it anew): after a token failure the module's
/// state can be stuck (SoftHSM answers C_GetSlotList with CKR_GENERAL_ERROR until finalised), and
/// the next engine instance initialises it again. Returns the CK_RV, or -1 when the module is not
/// loaded in this process.
static inline long smime_pkcs11_finalize(const char *module_path) {
    void *handle = dlopen(module_path, RTLD_NOW | RTLD_NOLOAD);
    if (handle == NULL) return -1;
    typedef unsigned long (*get_list_fn)(void **);
    get_list_fn get_list = (get_list_fn)dlsym(handle, "C_GetFunctionList");
    long rv = -1;
    if (get_list != NULL) {
        // CK_FUNCTION_LIST: a CK_VERSION (2 bytes, padded to a pointer) then function pointers
        // in the order of PKCS#11 2.40; C_Finalize is the second one after C_Initialize.
        struct { unsigned char version[2]; void *fns[2]; } *list = NULL;
        if (get_list((void **)&list) == 0 && list != NULL) {
            unsigned long (*finalize)(void *) = (unsigned long (*)(void *))list->fns[1];
            rv = (long)finalize(NULL);
        }
    }
    dlclose(handle);
    return rv;
}

// MARK: encryption (SMIMECapabilities as X509_ALGORS)

static inline int smime_sk_X509_ALGOR_num(const STACK_OF(X509_ALGOR) *sk) { return sk_X509_ALGOR_num(sk); }
static inline X509_ALGOR *smime_sk_X509_ALGOR_value(const STACK_OF(X509_ALGOR) *sk, int i) {
    return sk_X509_ALGOR_value(sk, i);
}
static inline void smime_sk_X509_ALGOR_pop_free(STACK_OF(X509_ALGOR) *sk) { sk_X509_ALGOR_pop_free(sk, X509_ALGOR_free); }
// MARK: revocation (AIA OCSP URLs, CRL distribution points, CRL stacks)

/// Writes the OCSP responder URLs of the certificate's AIA, one per line, to `out`; returns how many.
static inline int smime_ocsp_urls(X509 *x, BIO *out) {
    STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(x);
    if (urls == NULL) return 0;
    int n = 0;
    for (int i = 0; i < sk_OPENSSL_STRING_num(urls); i++) {
        const char *url = sk_OPENSSL_STRING_value(urls, i);
        if (url == NULL) continue;
        BIO_puts(out, url);
        BIO_puts(out, "\n");
        n++;
    }
    X509_email_free(urls);
    return n;
}

/// Writes the URIs of the certificate's CRL distribution points (full names only), one per
/// line, to `out`; returns how many.
static inline int smime_crl_urls(X509 *x, BIO *out) {
    STACK_OF(DIST_POINT) *points = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
    if (points == NULL) return 0;
    int n = 0;
    for (int i = 0; i < sk_DIST_POINT_num(points); i++) {
        DIST_POINT *point = sk_DIST_POINT_value(points, i);
        if (point == NULL || point->distpoint == NULL || point->distpoint->type != 0) continue;
        GENERAL_NAMES *names = point->distpoint->name.fullname;
        for (int j = 0; j < sk_GENERAL_NAME_num(names); j++) {
            GENERAL_NAME *name = sk_GENERAL_NAME_value(names, j);
            if (name == NULL || name->type != GEN_URI) continue;
            const ASN1_IA5STRING *uri = name->d.uniformResourceIdentifier;
            BIO_write(out, ASN1_STRING_get0_data(uri), ASN1_STRING_length(uri));
            BIO_puts(out, "\n");
            n++;
        }
    }
    sk_DIST_POINT_pop_free(points, DIST_POINT_free);
    return n;
}

static inline STACK_OF(X509_CRL) *smime_sk_X509_CRL_new_null(void) { return sk_X509_CRL_new_null(); }
/// Pushes without an extra reference: the stack owns the caller's.
static inline int smime_sk_X509_CRL_push(STACK_OF(X509_CRL) *sk, X509_CRL *crl) { return sk_X509_CRL_push(sk, crl); }

/// Frees only the stack, not the CRLs (for stacks holding borrowed pointers).
static inline void smime_sk_X509_CRL_free_stack(STACK_OF(X509_CRL) *sk) { sk_X509_CRL_free(sk); }

/// The CRL reason code of a revoked entry, or -1 when it carries none.
static inline int smime_revoked_reason(X509_REVOKED *entry) {
    ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, NULL, NULL);
    if (reason == NULL) return -1;
    long code = ASN1_ENUMERATED_get(reason);
    ASN1_ENUMERATED_free(reason);
    return (int)code;
}

/// Reads all of a BIO (bounded by `max`) into a new memory BIO's buffer; returns the memory BIO.
static inline BIO *smime_bio_slurp(BIO *in, long max) {
    BIO *out = BIO_new(BIO_s_mem());
    if (out == NULL) return NULL;
    char buffer[8192];
    long total = 0;
    int got;
    while ((got = BIO_read(in, buffer, sizeof buffer)) > 0) {
        total += got;
        if (total > max) { BIO_free(out); return NULL; }
        BIO_write(out, buffer, got);
    }
    return out;
}

#endif
