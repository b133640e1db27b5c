/* SPDX-License-Identifier: Apache-2.0
 *
 * null-milter: libmilter's own cost per message, for `make bench`.
 *
 * A milter that does nothing, built on the same libmilter as smime-milter, registered with the
 * same callbacks and negotiating the same protocol steps (no HELO, no unknown commands, no
 * replies to header, end-of-header and body; leading spaces kept). Its CPU time per message is
 * what libmilter's thread per connection, its poll and reads and its replies cost before any
 * code of ours runs: the floor under "the milter's CPU per message beyond the key operation".
 *
 * Not part of the product. scripts/bench_run.py builds it with `cc -O2 ... -lmilter` into the
 * bench's work directory. Usage: null-milter inet:PORT@127.0.0.1 | unix:/path
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <libmilter/mfapi.h>

/* Its address marks a connection on which header, end-of-header and body get no reply. */
static const char nm_no_reply = 1;

static sfsistat nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                             unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                             unsigned long *pf2, unsigned long *pf3) {
    (void)f2; (void)f3;
    /* What smime-milter asks for (Sources/Milter/Callbacks.swift, milterNegotiate). */
    const unsigned long steps = SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NR_HDR | SMFIP_NR_EOH |
                                SMFIP_NR_BODY | SMFIP_HDR_LEADSPC;
    *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_QUARANTINE);
    *pf1 = f1 & steps;
    *pf2 = 0;
    *pf3 = 0;
    /* A step the MTA expects no reply to must return SMFIS_NOREPLY, or libmilter logs an error
     * per call. The agreed steps are kept per connection in the private pointer (no memory). */
    smfi_setpriv(ctx, (*pf1 & SMFIP_NR_HDR) ? (void *)&nm_no_reply : NULL);
    return SMFIS_CONTINUE;
}

/* Answer for header, end-of-header and body: SMFIS_NOREPLY when negotiated. */
static sfsistat nm_step(SMFICTX *ctx) {
    return smfi_getpriv(ctx) != NULL ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat nm_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr) {
    (void)ctx; (void)host; (void)addr;
    return SMFIS_CONTINUE;
}

static sfsistat nm_envfrom(SMFICTX *ctx, char **argv) {
    (void)ctx; (void)argv;
    return SMFIS_CONTINUE;
}

static sfsistat nm_envrcpt(SMFICTX *ctx, char **argv) {
    (void)ctx; (void)argv;
    return SMFIS_CONTINUE;
}

static sfsistat nm_header(SMFICTX *ctx, char *name, char *value) {
    (void)name; (void)value;
    return nm_step(ctx);
}

static sfsistat nm_eoh(SMFICTX *ctx) {
    return nm_step(ctx);
}

static sfsistat nm_body(SMFICTX *ctx, unsigned char *chunk, size_t len) {
    (void)chunk; (void)len;
    return nm_step(ctx);
}

static sfsistat nm_eom(SMFICTX *ctx) {
    (void)ctx;
    return SMFIS_ACCEPT;
}

static sfsistat nm_abort(SMFICTX *ctx) {
    (void)ctx;
    return SMFIS_CONTINUE;
}

static sfsistat nm_close(SMFICTX *ctx) {
    smfi_setpriv(ctx, NULL);
    return SMFIS_CONTINUE;
}

int main(int argc, char **argv) {
    struct smfiDesc desc;
    if (argc != 2) {
        fprintf(stderr, "usage: %s inet:PORT@127.0.0.1 | unix:/path\n", argv[0]);
        return 2;
    }
    memset(&desc, 0, sizeof desc);
    desc.xxfi_name = "null-milter";
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_QUARANTINE;
    desc.xxfi_connect = nm_connect;
    desc.xxfi_envfrom = nm_envfrom;
    desc.xxfi_envrcpt = nm_envrcpt;
    desc.xxfi_header = nm_header;
    desc.xxfi_eoh = nm_eoh;
    desc.xxfi_body = nm_body;
    desc.xxfi_eom = nm_eom;
    desc.xxfi_abort = nm_abort;
    desc.xxfi_close = nm_close;
    desc.xxfi_negotiate = nm_negotiate;
    signal(SIGPIPE, SIG_IGN);
    if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS) {
        fprintf(stderr, "null-milter: cannot set up %s\n", argv[1]);
        return 1;
    }
    if (smfi_opensocket(1) != MI_SUCCESS) {
        fprintf(stderr, "null-milter: cannot listen on %s\n", argv[1]);
        return 1;
    }
    fprintf(stdout, "null-milter listening on %s\n", argv[1]);
    fflush(stdout);
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
