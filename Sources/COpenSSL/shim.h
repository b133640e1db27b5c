#ifndef SMIME_MILTER_COPENSSL_SHIM_H
#define SMIME_MILTER_COPENSSL_SHIM_H
// OpenSSL headers, plus static inline wrappers for the function-like macros
// Swift cannot import (sk_X509_* helpers, BIO_get_mem_data, ...).
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/x509_vfy.h>
#endif
