# SPDX-License-Identifier: Apache-2.0
"""Per-process and per-connection limits through real Postfix (issue 11).

MaxConnections: with the limit at 1, a second SMTP session (its own smtpd, so its own milter
connection) while a first one is open is refused with a 4xx by Postfix, the client keeps the
mail, and once the first session closes the same mail is accepted and delivered, signed.
MilterTimeout: a milter client that negotiates and then says nothing is dropped after the
timeout (libmilter alone checks waiting sessions only every 600 s; the milter's own watchdog
closes it), with a log line.

Environment: SMIME_MILTER_BIN as for the other rig tests.
"""
from __future__ import annotations

import smtplib
import socket
import struct
import time

import pytest

import rig as rigmod
from conftest import KEEP, _require_tools


@pytest.fixture(scope="module")
def limit_rig(request, milter_bin):
    _require_tools()
    r = rigmod.Rig(milter_bin=milter_bin)
    r.milter_settings.extra = "MaxConnections 1\nMilterTimeout 5\n"
    r.start()
    request.addfinalizer(lambda: r.stop(keep=KEEP))
    return r


def _open_session(r) -> smtplib.SMTP:
    s = smtplib.SMTP(rigmod.INTERNAL_ADDR, r.postfix.int_port, local_hostname="client.example", timeout=30)
    s.ehlo()
    return s


def _try_send(r, rcpt: str, data: str) -> int:
    """One SMTP transaction; the first reply code of 400 or more, or 250 when accepted."""
    with _open_session(r) as s:
        code, _ = s.mail("alice@example.com")
        if code >= 400:
            return code
        code, _ = s.rcpt(rcpt)
        if code >= 400:
            return code
        code, _ = s.data(rigmod.crlf(data))
        return code


def _milter_sessions(r) -> int:
    """Established TCP connections to the milter's port (from /proc/net/tcp, local side)."""
    count = 0
    with open("/proc/net/tcp") as f:
        for line in list(f)[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == "01" and int(local.split(":")[1], 16) == r.milter.port:
                count += 1
    return count


def test_connections_beyond_max_connections_tempfail_and_the_mail_arrives_later(limit_rig):
    r = limit_rig
    rcpt = f"limit@{rigmod.SINK_DOMAIN}"
    data = f"From: Alice <alice@example.com>\nTo: {rcpt}\nSubject: beyond the limit\n\nkept by the client\n"
    # Start from no milter connection at all: the rig's own readiness probe may still hold its
    # place on a slow machine, and the holder would then be the one refused (seen in CI).
    rigmod.wait_until(lambda: _milter_sessions(r) == 0, 30, "the milter to have no open connection")
    time.sleep(1)   # the milter counts a connection until libmilter's close callback has run
    holder = _open_session(r)
    try:
        rigmod.wait_until(lambda: _milter_sessions(r) == 1, 30, "the holder's smtpd to connect to the milter")
        # The holder's smtpd is connected to the milter; this second one is one too many.
        deadline = time.monotonic() + 30
        code = _try_send(r, rcpt, data)
        assert 400 <= code < 500, f"expected a tempfail beyond MaxConnections, got {code}"
        while "more than MaxConnections 1" not in r.milter.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "refused with tempfail: 2 open connections, more than MaxConnections 1" in r.milter.log(), \
            r.milter.log()[-2000:]
        assert r.sink.for_rcpt(rcpt) == []
    finally:
        holder.quit()
    # The holder's milter connection closes with its SMTP session; retry as a client would.
    deadline = time.monotonic() + 60
    while (code := _try_send(r, rcpt, data)) != 250 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert code == 250, f"the retried mail was not accepted: {code}"
    got = r.sink.wait_for(rcpt)
    assert len(got) == 1, "the mail must be delivered exactly once"
    assert rigmod.openssl_verify(got[0].message, r.trust_anchor, r.root / "verify").ok


def test_a_stalled_milter_client_is_dropped_after_milter_timeout(limit_rig):
    r = limit_rig
    started = time.monotonic()
    with socket.create_connection((rigmod.INTERNAL_ADDR, r.milter.port), timeout=20) as s:
        # Negotiate (SMFIC_OPTNEG, version 6, every action and protocol bit), then say nothing.
        s.sendall(struct.pack(">IcIII", 13, b"O", 6, 0x1FF, 0x1FFFFF))
        reply = b""
        while True:
            chunk = s.recv(4096)   # the negotiation reply, then EOF after MilterTimeout
            if not chunk:
                break
            reply += chunk
        elapsed = time.monotonic() - started
    assert reply[4:5] == b"O", f"no negotiation reply: {reply!r}"
    # MilterTimeout 5: closed by the timeout, not at once and not never (wide margins). libmilter
    # alone would hold it up to 600 s more (it checks waiting sessions every 600 s); the
    # milter's own watchdog closes it.
    assert 2.5 < elapsed < 20, elapsed
    rigmod.wait_until(lambda: "closed a milter connection on which the MTA sent nothing" in r.milter.log(), 10,
                      "the watchdog's log line")
