// SPDX-License-Identifier: Apache-2.0
#ifndef SMIME_MILTER_CLIBPQ_SHIM_H
#define SMIME_MILTER_CLIBPQ_SHIM_H
// PostgreSQL's client library (libpq, Debian libpq-dev), for RecipientStorePostgreSQL.
#include <libpq-fe.h>
#endif
