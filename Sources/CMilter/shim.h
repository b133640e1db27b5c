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
#endif
