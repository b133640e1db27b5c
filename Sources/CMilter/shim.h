// SPDX-License-Identifier: Apache-2.0
#ifndef SMIME_MILTER_CMILTER_SHIM_H
#define SMIME_MILTER_CMILTER_SHIM_H
#include <stdbool.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#ifdef __linux__
#include <linux/filter.h>
#endif
#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

/// The int at `index` (in ints) of a libmilter context. `struct smfi_str` is private; in
/// Debian's libmilter 8.17 the session's socket (`ctx_sd`) follows an 8-byte `ctx_id`, i.e. at
/// index 2. `IdleWatchdog` reads its candidates through this and trusts one only when it is a
/// connected stream socket on the milter's own listening address.
static inline int smime_milter_ctx_int(const SMFICTX *ctx, int index) {
    return ((const int *) (const void *) ctx)[index];
}
#endif
