// SPDX-License-Identifier: Apache-2.0
#ifndef SMIME_MILTER_COPENSSL_DECRYPTION_H
#define SMIME_MILTER_COPENSSL_DECRYPTION_H
// Wrappers for inbound decryption: the STACK_OF(CMS_RecipientInfo) macros, and the content
// cipher of an envelope (CMS_EnvelopedData is opaque in OpenSSL 3.0 and has no getter for its
// contentEncryptionAlgorithm).
#include <openssl/cms.h>
#include <openssl/objects.h>
#include <openssl/asn1.h>
#include <openssl/x509.h>

static inline int smime_cms_recipient_count(CMS_ContentInfo *cms) {
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
    return ris == NULL ? 0 : sk_CMS_RecipientInfo_num(ris);
}
static inline CMS_RecipientInfo *smime_cms_recipient(CMS_ContentInfo *cms, int i) {
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
    return ris == NULL ? NULL : sk_CMS_RecipientInfo_value(ris, i);
}

/// Whether the RecipientInfo names `cert` (issuer and serial, or subject key identifier):
/// KeyTransRecipientInfo, or one of the RecipientEncryptedKeys of a KeyAgreeRecipientInfo.
static inline int smime_cms_recipient_names(CMS_RecipientInfo *ri, X509 *cert) {
    int type = CMS_RecipientInfo_type(ri);
    if (type == CMS_RECIPINFO_TRANS) return CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0;
    if (type == CMS_RECIPINFO_AGREE) {
        STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);
        if (reks == NULL) return 0;
        for (int i = 0; i < sk_CMS_RecipientEncryptedKey_num(reks); i++) {
            if (CMS_RecipientEncryptedKey_cert_cmp(sk_CMS_RecipientEncryptedKey_value(reks, i), cert) == 0) return 1;
        }
    }
    return 0;
}

/// Skips one BER element at *p (before end), nested indefinite lengths included, using
/// OpenSSL's TLV header parser; 0 on malformed input or nesting deeper than `depth`.
static inline int smime_ber_skip(const unsigned char **p, const unsigned char *end, int depth) {
    const unsigned char *q = *p;
    long len = 0; int tag = 0, cls = 0;
    if (depth <= 0 || q >= end) return 0;
    int r = ASN1_get_object(&q, &len, &tag, &cls, end - q);
    if (r & 0x80) return 0;
    if (r == 0x21) {  /* constructed, indefinite length: children up to the end-of-contents */
        while (q + 2 <= end && !(q[0] == 0 && q[1] == 0)) {
            if (!smime_ber_skip(&q, end, depth - 1)) return 0;
        }
        if (q + 2 > end) return 0;
        *p = q + 2;
        return 1;
    }
    if (len > end - q) return 0;
    *p = q + len;
    return 1;
}

/// Enters one element at *p: *p moves to its contents; *inner_end is where they end (for an
/// indefinite length, `end`). 0 on malformed input.
static inline int smime_ber_enter(const unsigned char **p, const unsigned char *end, const unsigned char **inner_end) {
    const unsigned char *q = *p;
    long len = 0; int tag = 0, cls = 0;
    int r = ASN1_get_object(&q, &len, &tag, &cls, end - q);
    if (r & 0x80) return 0;
    if (!(r & V_ASN1_CONSTRUCTED)) return 0;
    *inner_end = (r == 0x21) ? end : q + len;
    if (*inner_end > end) return 0;
    *p = q;
    return 1;
}

/// The NID of the content-encryption algorithm of an EnvelopedData or AuthEnvelopedData
/// ContentInfo (DER or BER), or NID_undef. CMS_EnvelopedData is opaque in OpenSSL 3.0 without a
/// getter, so the path to the AlgorithmIdentifier (RFC 5652 §6.1, RFC 5083 §2.1) is walked with
/// ASN1_get_object and the identifier itself decoded by d2i_X509_ALGOR.
static inline int smime_envelope_cipher_nid(const unsigned char *der, long length) {
    const unsigned char *p = der, *end = der + length, *e1, *e2, *e3, *e4;
    if (!smime_ber_enter(&p, end, &e1)) return NID_undef;          /* ContentInfo */
    if (!smime_ber_skip(&p, e1, 8)) return NID_undef;              /* contentType */
    if (!smime_ber_enter(&p, e1, &e2)) return NID_undef;           /* [0] EXPLICIT */
    if (!smime_ber_enter(&p, e2, &e3)) return NID_undef;           /* (Auth)EnvelopedData */
    if (!smime_ber_skip(&p, e3, 8)) return NID_undef;              /* version */
    if (p < e3 && *p == 0xA0 && !smime_ber_skip(&p, e3, 16)) return NID_undef;  /* [0] originatorInfo */
    if (!smime_ber_skip(&p, e3, 16)) return NID_undef;             /* recipientInfos */
    if (!smime_ber_enter(&p, e3, &e4)) return NID_undef;           /* EncryptedContentInfo */
    if (!smime_ber_skip(&p, e4, 8)) return NID_undef;              /* contentType */
    const unsigned char *q = p;
    X509_ALGOR *alg = d2i_X509_ALGOR(NULL, &q, e4 - p);
    if (alg == NULL) return NID_undef;
    int nid = OBJ_obj2nid(alg->algorithm);
    X509_ALGOR_free(alg);
    return nid;
}

/// The NID of the key-encryption algorithm of a RecipientInfo (rsaEncryption, rsaesOaep,
/// dhSinglePass-stdDH-sha256kdf-scheme, ...), or NID_undef.
static inline int smime_cms_recipient_key_algorithm_nid(CMS_RecipientInfo *ri) {
    X509_ALGOR *alg = NULL;
    int type = CMS_RecipientInfo_type(ri);
    if (type == CMS_RECIPINFO_TRANS) {
        if (CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg) != 1 || alg == NULL) return NID_undef;
    } else if (type == CMS_RECIPINFO_AGREE) {
        if (CMS_RecipientInfo_kari_get0_alg(ri, &alg, NULL) != 1 || alg == NULL) return NID_undef;
    } else {
        return NID_undef;
    }
    return OBJ_obj2nid(alg->algorithm);
}

/// The eContent of an opaque SignedData ContentInfo (the signed bytes it carries), or NULL when
/// it is not SignedData or the content is detached. Owned by `cms`.
static inline const ASN1_OCTET_STRING *smime_cms_signed_content(CMS_ContentInfo *cms) {
    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) return NULL;
    ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
    return pos == NULL ? NULL : *pos;
}
#endif
