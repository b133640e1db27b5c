// SPDX-License-Identifier: Apache-2.0
#ifndef SMIME_MILTER_CPKCS11_SHIM_H
#define SMIME_MILTER_CPKCS11_SHIM_H
// Key generation on a PKCS#11 token (NewKeysOn). OpenSSL's pkcs11 engine (libp11 0.4.12) loads
// and uses token keys but cannot make them, so this calls the module's C_GenerateKeyPair
// itself, through the standard PKCS#11 2.40 header (p11-kit's). Written in C because the
// attribute templates are arrays of pointers into the caller's stack that Swift would have to
// pin one by one. Signing and decryption stay with the engine.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <p11-kit/pkcs11.h>

/// Compares a token label (32 bytes, blank-padded, not NUL-terminated) with `want`.
static inline int smime_p11_label_is(const unsigned char label[32], const char *want) {
    size_t n = strlen(want);
    if (n > 32) return 0;
    if (memcmp(label, want, n) != 0) return 0;
    for (size_t i = n; i < 32; i++) if (label[i] != ' ') return 0;
    return 1;
}

/// Makes a key pair on the token labelled `token_label` of the module at `module_path`:
/// RSA of `rsa_bits` bits when `ec_params` is NULL, else EC on the curve `ec_params` names (a
/// DER OBJECT IDENTIFIER made by OpenSSL). Both halves are token objects with `label` and `id`;
/// the private half is private, sensitive and never extractable, for signing and for
/// decryption (RSA) or key agreement (EC). Returns 1, or 0 with a reason in `error` (never the
/// PIN). The module is initialised and finalised here: call it before the engine loads it.
static inline int smime_p11_generate_keypair(const char *module_path, const char *token_label,
                                             const unsigned char *pin, unsigned long pin_len,
                                             unsigned long rsa_bits,
                                             const unsigned char *ec_params, unsigned long ec_params_len,
                                             const char *label, const unsigned char *id, unsigned long id_len,
                                             char *error, size_t error_len) {
    int ok = 0, initialized = 0;
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    CK_SLOT_ID *slots = NULL;
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_RV rv;
    void *lib = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) { snprintf(error, error_len, "cannot load the PKCS#11 module %s: %s", module_path, dlerror()); return 0; }
    CK_C_GetFunctionList get_list = (CK_C_GetFunctionList) dlsym(lib, "C_GetFunctionList");
    if (get_list == NULL || get_list(&f) != CKR_OK || f == NULL) {
        snprintf(error, error_len, "%s is not a PKCS#11 module (no C_GetFunctionList)", module_path);
        goto done;
    }
    rv = f->C_Initialize(NULL);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        snprintf(error, error_len, "C_Initialize failed (CKR 0x%lx)", (unsigned long) rv);
        goto done;
    }
    initialized = (rv == CKR_OK);
    CK_ULONG count = 0;
    if ((rv = f->C_GetSlotList(CK_TRUE, NULL, &count)) != CKR_OK) {
        snprintf(error, error_len, "C_GetSlotList failed (CKR 0x%lx)", (unsigned long) rv);
        goto done;
    }
    slots = calloc(count ? count : 1, sizeof(CK_SLOT_ID));
    if (slots == NULL || (rv = f->C_GetSlotList(CK_TRUE, slots, &count)) != CKR_OK) {
        snprintf(error, error_len, "C_GetSlotList failed");
        goto done;
    }
    CK_SLOT_ID slot = 0;
    int found = 0;
    for (CK_ULONG i = 0; i < count && !found; i++) {
        CK_TOKEN_INFO info;
        if (f->C_GetTokenInfo(slots[i], &info) == CKR_OK && smime_p11_label_is(info.label, token_label)) {
            slot = slots[i];
            found = 1;
        }
    }
    if (!found) { snprintf(error, error_len, "no token labelled \"%s\" in %s", token_label, module_path); goto done; }
    if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &session)) != CKR_OK) {
        snprintf(error, error_len, "C_OpenSession failed (CKR 0x%lx)", (unsigned long) rv);
        goto done;
    }
    rv = f->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR) pin, pin_len);
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_LEN_RANGE) {
        snprintf(error, error_len, "the token refused the PIN (CKR 0x%lx)", (unsigned long) rv);
        goto done;
    }
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        snprintf(error, error_len, "C_Login failed (CKR 0x%lx)", (unsigned long) rv);
        goto done;
    }
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = rsa_bits;
    CK_BYTE exponent[] = { 0x01, 0x00, 0x01 };
    CK_ULONG label_len = strlen(label);
    int ec = ec_params != NULL;
    CK_MECHANISM mechanism = { ec ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
    CK_ATTRIBUTE public_template[8];
    CK_ATTRIBUTE private_template[10];
    CK_ULONG np = 0, nq = 0;
#define SMIME_P11_ATTR(t, n, kind, value, len) do { t[n].type = (kind); t[n].pValue = (void *) (value); t[n].ulValueLen = (len); n++; } while (0)
    SMIME_P11_ATTR(public_template, np, CKA_TOKEN, &yes, sizeof yes);
    SMIME_P11_ATTR(public_template, np, CKA_VERIFY, &yes, sizeof yes);
    SMIME_P11_ATTR(public_template, np, CKA_LABEL, label, label_len);
    SMIME_P11_ATTR(public_template, np, CKA_ID, id, id_len);
    if (ec) {
        SMIME_P11_ATTR(public_template, np, CKA_EC_PARAMS, ec_params, ec_params_len);
    } else {
        SMIME_P11_ATTR(public_template, np, CKA_ENCRYPT, &yes, sizeof yes);
        SMIME_P11_ATTR(public_template, np, CKA_MODULUS_BITS, &bits, sizeof bits);
        SMIME_P11_ATTR(public_template, np, CKA_PUBLIC_EXPONENT, exponent, sizeof exponent);
    }
    SMIME_P11_ATTR(private_template, nq, CKA_TOKEN, &yes, sizeof yes);
    SMIME_P11_ATTR(private_template, nq, CKA_PRIVATE, &yes, sizeof yes);
    SMIME_P11_ATTR(private_template, nq, CKA_SENSITIVE, &yes, sizeof yes);
    SMIME_P11_ATTR(private_template, nq, CKA_EXTRACTABLE, &no, sizeof no);
    SMIME_P11_ATTR(private_template, nq, CKA_SIGN, &yes, sizeof yes);
    SMIME_P11_ATTR(private_template, nq, CKA_LABEL, label, label_len);
    SMIME_P11_ATTR(private_template, nq, CKA_ID, id, id_len);
    if (ec) {
        SMIME_P11_ATTR(private_template, nq, CKA_DERIVE, &yes, sizeof yes);
    } else {
        SMIME_P11_ATTR(private_template, nq, CKA_DECRYPT, &yes, sizeof yes);
    }
#undef SMIME_P11_ATTR
    CK_OBJECT_HANDLE public_key, private_key;
    rv = f->C_GenerateKeyPair(session, &mechanism, public_template, np, private_template, nq, &public_key, &private_key);
    if (rv != CKR_OK) {
        snprintf(error, error_len, "C_GenerateKeyPair failed (CKR 0x%lx)", (unsigned long) rv);
        goto done;
    }
    ok = 1;
done:
    if (session != CK_INVALID_HANDLE) {
        (void) f->C_Logout(session);
        (void) f->C_CloseSession(session);
    }
    if (initialized) (void) f->C_Finalize(NULL);
    free(slots);
    // The module stays loaded: the engine opens it again for the new key.
    return ok;
}
#endif
