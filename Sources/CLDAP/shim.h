// SPDX-License-Identifier: Apache-2.0
#ifndef SMIME_MILTER_CLDAP_SHIM_H
#define SMIME_MILTER_CLDAP_SHIM_H
// OpenLDAP's client library (libldap), for IdentitySource: the non-deprecated API only.
#include <ldap.h>
#include <sys/time.h>

/// LDAP_OPT_SUCCESS and the option values are macros over casts Swift cannot import.
static inline int smime_ldap_set_version3(LDAP *ld) {
    int version = LDAP_VERSION3;
    return ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
}
static inline int smime_ldap_set_timeouts(LDAP *ld, int seconds) {
    struct timeval tv = { seconds, 0 };
    int a = ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    int b = ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
    return a != LDAP_OPT_SUCCESS ? a : b;
}
static inline int smime_ldap_no_referrals(LDAP *ld) { return ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF); }
static inline const char *smime_ldap_sasl_simple(void) { return LDAP_SASL_SIMPLE; }
#endif
