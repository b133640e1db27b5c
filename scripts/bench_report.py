# SPDX-License-Identifier: Apache-2.0
"""`make bench`, writing the document: docs/performance.md (targets table, tables of every row,
end to end, figures per core, micro-benchmarks, where the time goes), its CSV files and chart."""
from __future__ import annotations

import csv
import datetime
import os
import platform
import shutil
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "Tests" / "integration"))
import bench_chart  # noqa: E402
import bench_per_core  # noqa: E402  (figures per core)
import bench_store  # noqa: E402
import bench_targets  # noqa: E402
from bench_run import log  # noqa: E402
from bench_targets import cpu_per_message_us, e2e_summary, f, micro_p50_us  # noqa: E402,F401


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    osr = platform.platform()
    return f"{os.cpu_count()} cores ({cpu}){mem}, {osr}"


def analysis(b: Bench, speed: dict, e2e: list[dict], micro: str = "") -> list[str]:
    """Explanations of the misses, computed from this run's rows."""
    R = b.row
    L = []
    fast, slow = R("sign-ecdsa-2K-inet-c8"), R("sign-ecdsa-2K-inet-c8-mta-like-writes")
    uslow = R("sign-ecdsa-2K-unix-c8-mta-like-writes")
    summary = e2e_summary(e2e)
    base, e_inet, e_unix = (summary.get(k) for k in ("postfix-only", "milter-inet-ecdsa", "milter-unix-ecdsa"))
    if base and e_inet and e_unix and base["msg_per_s"] > 0:
        L.append(
            "**End to end over inet: Nagle and delayed ACK.** Postfix writes milter packets with Nagle's "
            "algorithm on (no TCP_NODELAY on its side). A packet that gets no reply leaves the milter's ACK to "
            "the delayed-ACK timer (~40 ms), and Postfix's next small packet waits for it. smime-milter therefore "
            "answers every step that the SMTP client's next command follows (connect, MAIL, RCPT, DATA) and "
            "negotiates no-reply only for header, end-of-header and body, which Postfix writes back to back "
            "before end-of-message (see `milterNegotiate` in Sources/Milter/Callbacks.swift). End to end, "
            f"ECDSA over inet ran at {e_inet['msg_per_s'] / base['msg_per_s']:.0%} of Postfix alone and over the "
            f"unix socket at {e_unix['msg_per_s'] / base['msg_per_s']:.0%}; before the change, inet was held at "
            "30% (one SMTP session: 20 msg/s).")
        if fast and slow:
            L.append(
                "milter-load's `--mta-like-writes` (Nagle on and *every* packet in its own send, each header "
                f"included) still shows the stall: sign-ecdsa c8 inet {slow['msg_per_s']} msg/s, p50 "
                f"{slow['p50_ms']} ms, against {fast['msg_per_s']} msg/s with TCP_NODELAY"
                + (f" and {uslow['msg_per_s']} msg/s over the unix socket" if uslow else "")
                + ". Postfix does not write that way for headers (the end-to-end rows above), but an MTA that did "
                "would want the unix socket.\n")
        else:
            L.append("")
    accept = summary.get("accept-all-milter-inet")
    if base and accept and base["msg_per_s"] > 0:
        L.append(
            "**End to end: the milter protocol alone.** With milter-load's accept-all milter in place of "
            "smime-milter (it answers every packet at once and changes nothing), Postfix ran at "
            f"{accept['msg_per_s']} msg/s, {accept['msg_per_s'] / base['msg_per_s']:.0%} of its rate without a "
            "milter: that share is the price of the milter protocol on Postfix's side (smtpd and cleanup "
            "speaking it, the extra connection per session) before any milter does any work, and it bounds "
            "what any milter can reach on this machine.\n")
    null = summary.get("null-milter-inet")
    if base and accept and null and e_inet and accept["msg_per_s"] > 0 and null["msg_per_s"] > 0:
        L.append(
            "**End to end: libmilter's share.** scripts/null-milter.c does the same nothing on libmilter "
            f"(smime-milter's callbacks and protocol steps): {null['msg_per_s']} msg/s, "
            f"{null['msg_per_s'] / accept['msg_per_s']:.0%} of the accept-all milter and "
            f"{null['msg_per_s'] / base['msg_per_s']:.0%} of Postfix alone. smime-milter signing ECDSA over inet ran "
            f"at {e_inet['msg_per_s'] / null['msg_per_s']:.0%} of it: the part of the distance to the accept-all "
            "milter that is not libmilter's is ours.\n")
    replays = {k: summary.get(f"replay-edits-milter-{k}") for k in ("inet", "unix")}
    accepts = {k: summary.get(f"accept-all-milter-{k}") for k in ("inet", "unix")}
    signers = {k: summary.get(f"milter-{k}-ecdsa") for k in ("inet", "unix")}
    if all(replays.values()) and all(a and a["msg_per_s"] > 0 for a in accepts.values()):
        size = getattr(b, "signed_message", None)
        size_text = f" (about {size.stat().st_size / 1024:.0f} KB)" if size and size.exists() else ""
        parts = [f"{k} {replays[k]['msg_per_s']} msg/s, {replays[k]['msg_per_s'] / accepts[k]['msg_per_s']:.0%} "
                 f"of the accept-all milter" for k in ("inet", "unix")]
        ours = [f"{signers[k]['msg_per_s'] / replays[k]['msg_per_s']:.0%} ({k})" for k in ("inet", "unix")
                if signers[k] and replays[k]["msg_per_s"] > 0]
        L.append(
            "**End to end: the edits' share.** The accept-all milter answering every message with the edits "
            "of a signed one (`milter-load --serve-accept-all --replay-edits FILE`: the MIME header fields and "
            f"the body of an alice-signed 2 KB message{size_text}) and signing nothing: {'; '.join(parts)}. "
            "That is what Postfix pays for applying a signature's edits (the body replaced in the queue file) "
            "and for carrying the larger message through qmgr, smtp and smtp-sink, before any signing"
            + (f"; smime-milter signing ECDSA reached {' and '.join(ours)} of it" if ours else "") + ".\n")
    pt, ptc = R("pass-through-2K-inet-c8"), R("pass-through-2K-inet-c8-conn-per-msg")
    ecc = R("sign-ecdsa-2K-inet-c8-conn-per-msg")
    if base and e_inet and pt and ptc and cpu_per_message_us(pt) and cpu_per_message_us(ptc):
        ec0 = R("sign-ecdsa-2K-inet-c8")
        L.append(
            "**End to end: where the rest goes.** Postfix alone kept both cores busy "
            f"({base['msg_per_s']} msg/s, about {2e6 / base['msg_per_s']:.0f} us of CPU per message for smtp-source, "
            "smtpd, cleanup, qmgr, smtp and smtp-sink together), so every microsecond the milter path adds comes "
            "off the rate. smtp-source sends one message per SMTP session, as most clients do, and Postfix "
            "opens one milter connection per session; libmilter starts a thread for each connection and reads "
            "each packet with a poll and separate reads. milter-load with one message per connection "
            f"(`--messages-per-connection 1`) measures that: pass-through costs {cpu_per_message_us(ptc):.0f} us "
            f"of milter CPU per message against {cpu_per_message_us(pt):.0f} us on a kept connection"
            + (f", ECDSA signing {cpu_per_message_us(ecc):.0f} us against {cpu_per_message_us(ec0):.0f} us"
               if ecc and ec0 and cpu_per_message_us(ecc) and cpu_per_message_us(ec0) else "")
            + ". On top come Postfix's own milter work (macros, the packets, the header and body edits applied "
            "to the queue file) and a signed message of about 5 KB instead of 2 KB to queue, deliver and store. "
            "Neither the MTA side nor libmilter's threading is ours to change; the milter's own share is the "
            "per-message CPU in the rows above.\n")
    ec = R("sign-ecdsa-2K-inet-c8")
    if ec:
        per = cpu_per_message_us(ec)
        ossl = 2 / speed["ecdsa_sign"] * 1e6 if speed.get("ecdsa_sign") else None
        L.append(
            f"**ECDSA signing rate.** At concurrency 8 the milter used {ec['milter_cpu_pct']}% CPU for "
            f"{ec['msg_per_s']} msg/s: {per:.0f} us of CPU per message"
            + (f", where the P-256 signature itself costs {ossl:.0f} us (openssl speed)" if ossl else "")
            + f". milter-load took another {ec['client_cpu_pct']}% of the two cores. The rest is per-message "
            "overhead: CMS_sign building the SignedData (certificate chain, signed attributes, DER), MIME "
            "canonicalisation and base64, Swift allocation and copies, and libmilter's thread hand-offs "
            "(the kernel share of the profile below is mostly scheduler and futex work)"
            + (f". The CMS call alone costs {cms:.0f} us in-process (micro-benchmark 'CMS sign ECDSA P-256 2 KB', p50)"
               if (cms := micro_p50_us(micro, "CMS sign ECDSA P-256 2 KB")) else "")
            + (f"; at 5,000 msg/s, with milter-load's share as measured, the milter would have {budget:.0f} us of "
               "CPU per message for everything"
               if ec.get("client_cpu_pct") and (budget := max(0.0, 200 - float(ec["client_cpu_pct"])) / 100 / 5000 * 1e6)
               else "")
            + ".\n")
    pt = R("pass-through-2K-inet-c8")
    if ec and pt and cpu_per_message_us(pt):
        L.append(
            f"For comparison, a message the milter only passes through (pass-through, c8, inet) costs "
            f"{cpu_per_message_us(pt):.0f} us of milter CPU ({pt['milter_cpu_pct']}% for {pt['msg_per_s']} msg/s): "
            "that is the price of libmilter, the protocol and collecting the message, before any signing.\n")
    one_ec = R("per-core-sign-ecdsa-2K")
    if one_ec and cpu_per_message_us(one_ec) and speed.get("ecdsa_sign"):
        L.append(
            f"**The milter's own CPU beyond the key operation (issue 14).** One session signing 2 KB with P-256 "
            f"costs {cpu_per_message_us(one_ec):.0f} us of milter CPU per message, of which the signature is "
            f"{2e6 / speed['ecdsa_sign']:.0f} us. Instruction counts (callgrind, `scripts/callgrind_milter.py`, "
            "which repeat on this noisy machine where wall-clock rates do not) show where the rest goes: most "
            "of an ECDSA-signed 2 KB message is libcrypto, and of that the P-256 signature is the smaller "
            "part; the rest is CMS_sign building the SignedData (signer identifier and attribute copies, "
            "DER encoding of the certificate chain). The Swift side is spread thin over the MIME parse, the "
            "7-bit canonical form, base64 and the edits. Removed in this round, each seen in that profile: "
            "Foundation's substring search on every message (InternalHosts, the From check), a generic "
            "(unspecialised) loop decoding every header field, Sets built per call in the address and "
            "Content-Type scanners, scalar-by-scalar string building, a double dictionary look-up per callback "
            "in the idle watchdog. Removed in the third pass (2026-12-07), from the verify profile: the certificate "
            "cache hashing each 1 KB DER one byte at a time (Array's own hash), the signer's names printed anew "
            "for every message (now read once per cached certificate), the RFC 2231 dictionaries and scalar-by-"
            "scalar quoted strings of every Content-Type, per-byte appends in base64 decoding and line-end "
            "completion, a bounds-checked byte loop looking for boundary lines (now memchr); from the signing "
            "profile: the 7-bit facts read eight bytes at a time, base64 lines written in one pass, the byte "
            "search by memchr/memcmp. Together 2.41 M to 2.06 M instructions per verified and 975 k to 938 k per "
            "ECDSA-signed message; `scripts/callgrind_milter.py --mode MODE` counts what each costs. The kernel's share (a thread per "
            "connection in libmilter, a poll and separate reads per packet) is not ours to change.\n")
    floor = R(bench_per_core.FLOOR_LABEL)
    if one_ec and floor and cpu_per_message_us(floor) and cpu_per_message_us(one_ec) and speed.get("ecdsa_sign"):
        fl, ec_us = cpu_per_message_us(floor), cpu_per_message_us(one_ec)
        sig = 2e6 / speed["ecdsa_sign"]
        L.append(
            f"**libmilter's floor.** A C milter on the same libmilter that does nothing (scripts/null-milter.c: "
            "smime-milter's callbacks and protocol steps, SMFIS_NOREPLY where no reply is negotiated) used "
            f"{fl:.0f} us of CPU per 2 KB message under the same one-session load ({floor['msg_per_s']} msg/s at "
            f"{floor['milter_cpu_pct']}% CPU). That is {fl / 150:.0%} of the 150 us target before any code of ours "
            "runs: libmilter reads each packet with a poll, a 5-byte read of the length and command, another "
            "poll and a read of the data, and polls again (1 ms) before the next command; a message is a packet "
            "per header field besides the envelope, end-of-header, body and end-of-message packets, so most of "
            "that CPU is kernel time (`strace -c -f -p` on null-milter shows the calls). The milter cannot cut "
            "those packets: Postfix sends a macro packet before connect, HELO (also when the milter skips HELO), "
            "MAIL, RCPT, DATA, end-of-header and end-of-message, and smfi_setsymlist only shortens the lists (an "
            "empty list falls back to the milter_*_macros defaults: MILTER_MACRO_EVAL in Postfix's milter.c, "
            "milter8_event in milter8.c). Of the "
            f"{ec_us:.0f} us of a P-256-signed message, {sig:.0f} us are the signature, {fl:.0f} us libmilter and "
            f"{ec_us - sig - fl:.0f} us smime-milter's own work (MIME parse, canonical form, CMS_sign building the "
            "SignedData, base64, the edits). Meeting 150 us beyond the key operation would take a milter "
            "transport of our own in place of libmilter (fewer reads per packet, no poll before each), which "
            "this round left out: the brief links smime-milter to libmilter.\n")
    ver = R("verify-2K-inet-c8")
    if ver and getattr(b, "verify_active", False):
        per = cpu_per_message_us(ver)
        ossl = 2 / speed["rsa_verify"] * 1e6 if speed.get("rsa_verify") else None
        L.append(
            f"**Verification rate.** {ver['msg_per_s']} msg/s at concurrency 8 with {ver['milter_cpu_pct']}% milter "
            f"CPU: {per:.0f} us per message, where an RSA-2048 verification costs {ossl:.1f} us (openssl speed). "
            "The verify profile below shows where it goes: libcrypto's share is the whole CMS_verify with "
            "certificate-path building and its internal locks (pthread_rwlock: provider and store look-ups per "
            "call), and a large malloc/free share. OpenSSL 3.0 decodes every public key of the certificates a "
            "signature carries through the OSSL_DECODER framework, which builds a decoder chain per key "
            "(openssl/openssl#19119, about 5x slower than 1.1.1; later releases cache the chain, Debian 12 ships "
            "3.0): measured with callgrind that was over half the instructions of a 2 KB verification. The "
            "milter therefore decodes each distinct certificate once per process (Sources/SMIME/CMS/CMSParser.swift): "
            "OpenSSL's TLV reader finds the certificates field, the ContentInfo is parsed without it, and the "
            "cached certificates (keyed by their exact DER) are put back with CMS_add1_cert, so CMS_verify and "
            "the path check run as before; anything but plain DER of the usual shape is parsed the ordinary way"
            + (f". The micro-benchmarks put OpenSSL's ordinary parse (d2i_CMS_ContentInfo, certificates decoded) "
               f"at {mp:.0f} us, against {mv:.0f} us for the milter's whole CMS verification in-process (p50)"
               if (mp := micro_p50_us(micro, "CMS parse RSA-2048 2 KB"))
               and (mv := micro_p50_us(micro, "CMS verify RSA-2048 2 KB")) else "")
            + ". 5,000 msg/s on two cores leaves 400 us of CPU per message for everything, the load generator "
            "included. The trust store is built once per configuration.\n")
    rsa = R("sign-rsa-2K-inet-c8")
    if rsa:
        per = cpu_per_message_us(rsa)
        ossl = 2 / speed["rsa_sign"] * 1e6 if speed.get("rsa_sign") else None
        pt_us = cpu_per_message_us(R("pass-through-2K-inet-c8"))
        cms = micro_p50_us(micro, "CMS sign RSA-2048 2 KB")
        text = (f"**RSA signing rate.** {rsa['msg_per_s']} msg/s at concurrency 8 with {rsa['milter_cpu_pct']}% "
                f"milter CPU ({per:.0f} us per message; the RSA-2048 signature is {ossl:.0f} us of one core by "
                "openssl speed)")
        if pt_us and cms:
            text += (f". Per message that is about {pt_us:.0f} us of protocol and collection (the pass-through row), "
                     f"{cms:.0f} us for the CMS signature in-process (micro-benchmark p50, one thread) and "
                     f"{max(per - pt_us - cms, 0):.0f} us for the rest (7-bit entity, base64, edits, scheduling of eight "
                     "connections on two cores)")
        if speed.get("rsa_sign") and rsa.get("client_cpu_pct"):
            cores = max(0.0, 200 - float(rsa["client_cpu_pct"])) / 100
            budget = cores / (0.85 * speed["rsa_sign"]) * 1e6   # us of milter CPU per message at the target
            text += (f". milter-load itself took {rsa['client_cpu_pct']}% of a core; at 85% of `openssl speed "
                     f"-multi 2` (which ran alone) the milter would have {budget:.0f} us of CPU per message for "
                     f"everything, against {ossl:.0f} us for the RSA operation alone")
        L.append(text + ".\n")
    big, big8 = R("sign-rsa-100M-inet-c1"), R("sign-rsa-100M-8bit-inet-c1")
    if big and big.get("milter_rss_growth_kb"):
        g = float(big["milter_rss_growth_kb"]) / 1024
        g8 = f" and the 100 MB 8-bit UTF-8 message by {float(big8['milter_rss_growth_kb']) / 1024:.0f} MB" \
            if big8 and big8.get("milter_rss_growth_kb") else ""

        def growth(label: str, elsewhere: str) -> str:
            """This run's growth for a streaming shape, or what the integration test measured."""
            row = R(label)
            if row and row.get("milter_rss_growth_kb"):
                return f"{float(row['milter_rss_growth_kb']) / 1024:.0f} MB growth in this run ({label})"
            return elsewhere
        L.append(
            f"**Large messages.** The 100 MB 7-bit message made the milter grow by {g:.0f} MB{g8}. Bodies over "
            "SpoolThreshold (default 8 MB) are collected in a spool file (private 0700 directory, removed with "
            "the message). When the 7-bit conversion would keep the body as it is (VerbatimBodyScanner: the usual "
            "case, and milter-load's generated text), CMS hashes it from the file in 1 MB pieces and "
            "smfi_replacebody sends it back from the file. A single text part that needs converting (8-bit text, "
            "long lines, `From ` lines, trailing white space) is converted to quoted-printable a run of whole lines "
            "at a time (StreamingTextConverter), once for the hash and once for the reply. Opaque signing of "
            "either streams too: OpenSSL's streaming encoder (CMS_STREAM) writes the SignedData to a nameless "
            "scratch file in SpoolDirectory while hashing, and the reply is that file in base64 (100 MB: "
            f"{growth('sign-rsa-100M-opaque-inet-c1', '8 MB growth in Tests/integration/test_streaming.py')}, "
            "against 471 MB before). A multipart with large "
            "leaves (an 8-bit text part beside a base64 attachment, what 8BITMIME clients send) streams as "
            "well: StreamingMultipartConverter converts a skeleton of the message in memory with each leaf "
            "over 64 KB replaced by a sample, and the leaves are read from the file, copied or converted to "
            "quoted-printable (100 MB, detached: "
            f"{growth('sign-rsa-100M-multipart-inet-c1', '8 MB growth in Tests/integration/test_streaming.py')}, "
            "against 276 MB before). Inbound verification "
            "of a large multipart/signed streams too: SignedBodyScanner finds the delimiters in one pass over "
            "the spool file, only the signature part is read into memory, and OpenSSL hashes part 1 straight "
            "from the file through a source BIO (100 MB: "
            f"{growth('verify-100M-multipart-inet-c1', '8 MB growth through Postfix in Tests/integration/test_streaming.py')}, "
            "against 201 MB before). Other large shapes (opaque "
            "signed-data, a signed part inside a multipart, part 1 with bare LF line ends) and a digest "
            "mismatch to be diagnosed are still read back into memory once; the first SpoolThreshold bytes "
            "of every body are collected in memory before the spool file starts.\n")
    return L


def write_document(b: Bench, speed: dict, e2e: list[dict], micro: str, started: float, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_out = out.with_suffix(".csv")
    e2e_out = out.with_name(out.stem + "-e2e.csv")
    svg_out = out.with_suffix(".svg")
    shutil.copyfile(b.csv_path, csv_out)
    with open(e2e_out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["label", "round", "milter", "sender", "sessions", "messages", "delivered",
                                           "seconds", "msg_per_s", "ok", "signed_ok"])
        w.writeheader()
        for r in e2e:
            w.writerow({k: r.get(k, "") for k in w.fieldnames})
    with open(csv_out) as fh:
        rows = list(csv.DictReader(fh))
    svg_out.write_text(bench_chart.svg(rows))

    targets = bench_targets.targets(b, speed, e2e, micro)
    elapsed = time.monotonic() - started
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    L = []
    L.append("# smime-milter performance\n")
    L.append(f"Generated by `make bench{' BENCH_QUICK=1' if b.quick else ''}` (`scripts/bench.py`) on {date}, in "
             f"{elapsed:.0f} s. Machine: {machine()}. Every figure below is one the run printed; the raw rows are "
             f"in [performance.csv](performance.csv) (milter-load) and [performance-e2e.csv](performance-e2e.csv) "
             f"(Postfix end to end). The machine is shared and noisy: compare figures within one run only.\n")
    if b.quick:
        L.append("This is the quick variant (2 s per point, fewer concurrencies and sizes); `make bench` runs the "
                 "full matrix.\n")
    L.append("## Targets (issue 6)\n")
    L.append("| target | measured | ratio | status |")
    L.append("|---|---|---|---|")
    for name, measured, ratio, status, why in targets:
        s = f"**{status}**" if status in ("missed", "not measured") else status
        if status != "met" and why:
            s += f" ({why})"
        L.append(f"| {name} | {measured} | {ratio} | {s} |")
    L.append("")
    L.append("## Targets (issue 14, second round)\n")
    L.append("| target | measured | ratio | status |")
    L.append("|---|---|---|---|")
    for name, measured, ratio, status, why in bench_targets.targets_second_round(b, speed, e2e, micro):
        s = f"**{status}**" if status in ("missed", "not measured") else status
        if status != "met" and why:
            s += f" ({why})"
        L.append(f"| {name} | {measured} | {ratio} | {s} |")
    L.append("")
    if b.errors:
        L.append("Errors during the run:\n")
        L += [f"- {e}" for e in b.errors]
        L.append("")
    if b.notes:
        L.append("Notes:\n")
        L += [f"- {n}" for n in b.notes]
        L.append("")
    L.append("## Physical limit: OpenSSL on this machine\n")
    L.append(f"`{speed['command']}`\n\n```\n" + "\n".join(speed["lines"]) + "\n```\n")
    L.append("## milter-load: msg/s by concurrency (2 KB, inet)\n")
    L.append("![msg/s by concurrency](performance.svg)\n")
    L.append("| label | mode | socket | conc. | size | messages | errors | msg/s | MB/s | p50 ms | p99 ms | "
             "p99.9 ms | milter CPU % | client CPU % | milter peak RSS MB |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        peak = f"{float(r['milter_peak_rss_kb']) / 1024:.0f}" if r["milter_peak_rss_kb"] else ""
        L.append(f"| {r['label']} | {r['mode']} | {r['socket']} | {r['concurrency']} | {r['size_bytes']} | "
                 f"{r['messages']} | {r['errors']} | {r['msg_per_s']} | {r['mb_per_s']} | {r['p50_ms']} | "
                 f"{r['p99_ms']} | {r['p999_ms']} | {r['milter_cpu_pct']} | {r['client_cpu_pct']} | {peak} |")
    L.append("")
    L.append("Rows labelled `ceiling-*` are milter-load against its own accept-all milter "
             "(`milter-load --serve-accept-all`); their \"milter\" CPU is that server's. CPU percentages are of one "
             "core (200% = both cores). The load generator shares the two cores with the milter.\n")
    L.append("## End to end: smtp-source -> Postfix -> smtp-sink (2 KB)\n")
    if e2e:
        summary = e2e_summary(e2e)
        base = summary.get("postfix-only")
        L.append("| configuration | milter | sender | msg/s (median) | each round | of Postfix alone | delivered all | signature verifies |")
        L.append("|---|---|---|---|---|---|---|---|")
        for label, m in summary.items():
            share = f"{m['msg_per_s'] / base['msg_per_s']:.0%}" if base and base["msg_per_s"] > 0 else "-"
            verifies = m["signed_ok"] if label.startswith(("milter-", "replay-edits-")) else "-"
            L.append(f"| {label} | {m['milter']} | {m['sender']} | {m['msg_per_s']} | "
                     f"{', '.join(str(x) for x in m['rates'])} | {share} | {m['ok']} | {verifies} |")
        L.append("\nEvery run:\n")
        L.append("| round | run | sessions | messages | seconds | msg/s | delivered all | signature verifies |")
        L.append("|---|---|---|---|---|---|---|---|")
        for r in e2e:
            L.append(f"| {r.get('round', 1)} | {r['label']} | {r['sessions']} | {r['messages']} | "
                     f"{r['seconds']} | {r['msg_per_s']} | {r['ok']} | {r.get('signed_ok', '-')} |")
        L.append("\nTime runs from the start of smtp-source to the last message written by smtp-sink (which keeps "
                 "every message in a file). A warm-up of 40 messages precedes each run. The configurations take "
                 "turns in rounds, so that the drift of this shared machine falls on all of them alike; each is "
                 "reported by its median.\n")
    else:
        L.append("Not run (see notes).\n")
    L += bench_per_core.section(b, cpu_per_message_us)
    L += bench_store.section(b)
    L.append("## Micro-benchmarks (Benchmarks/, ordo-one/benchmark)\n")
    L.append(micro + "\n" if micro else "Not run.\n")
    L.append("In-process, no milter protocol, one thread unless named: `SignableEntity.make` is the MIME parse and 7-bit "
             "canonical form, `CMS sign` the SignedData over it, `CMS parse` d2i_CMS_ContentInfo alone (with the "
             "certificates the signature carries), `CMS verify` signature, digest and certificate path, "
             "`MessageVerifier` the whole inbound check of a 2 KB multipart/signed message. `CMS verify ..., 64 on "
             "N threads` is 64 verifications spread over N threads of its own that share one trust store (the "
             "time is for all 64): on 2 threads the in-process limit on both cores, on 8 what eight libmilter "
             "threads verifying at once cost each other.\n")
    L.append("## Where the time goes\n")
    L += analysis(b, speed, e2e, micro)
    L.append("### Profile\n")
    L.append((getattr(b, "profile_text", "") or "No profile taken.") + "\n")
    L.append("## How to reproduce\n")
    L.append("```\nswift build -c release          # smime-milter and milter-load\n"
             "make bench                      # full run, about 12 minutes; BENCH_QUICK=1 for the quick variant\n"
             "```\n\nThe pieces by hand (the test PKI comes from `Tests/fixtures/make_test_pki.py DIR`):\n\n"
             "```\nopenssl speed -multi 2 -seconds 3 rsa2048 ecdsap256\n"
             ".build/release/smime-milter run --config milter.conf &      # Socket inet:8891@127.0.0.1, Mode s, ...\n"
             ".build/release/milter-load --socket inet:8891@127.0.0.1 --mode sign-ecdsa --concurrency 8 \\\n"
             "    --size 2K --seconds 5 --milter-pid $! --csv out.csv\n"
             ".build/release/milter-load --serve-accept-all inet:8892@127.0.0.1 &   # the ceiling\n"
             "(cd Benchmarks && swift package benchmark)\n```\n\n"
             "Instructions per message, which repeat on a loaded machine (valgrind's callgrind under milter-load): "
             "`python3 scripts/callgrind_milter.py --mode sign-ecdsa --mode sign-rsa`; method and findings in "
             "[profiling.md](profiling.md).\n")
    out.write_text("\n".join(L))
    log(f"wrote {out}, {csv_out}, {e2e_out}, {svg_out}")
