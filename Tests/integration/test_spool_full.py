# SPDX-License-Identifier: Apache-2.0
"""The spool directory full: ENOSPC while a body is spooled gives a tempfail (451) and nothing
is delivered, never a truncated body or signature; a small message that needs no spool file is
still signed. The milter runs in a private mount namespace whose SpoolDirectory is a 256 KB
tmpfs (the machine's file systems are not touched).

Environment: SMIME_MILTER_BIN as for the other rig tests.
"""
from __future__ import annotations

import smtplib

import pytest

import rig as rigmod
from conftest import KEEP, _require_tools


@pytest.fixture(scope="module")
def full_rig(request, milter_bin):
    _require_tools()
    r = rigmod.Rig(milter_bin=milter_bin)
    spool = r.root / "spool"
    spool.mkdir(mode=0o700)
    r.milter_settings.extra = f"SpoolThreshold 16K\nSpoolDirectory {spool}\n"
    r.milter.launcher = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                         'mount -t tmpfs -o size=256k,mode=0700 tmpfs "$0" && exec "$@"', str(spool)]
    r.start()
    request.addfinalizer(lambda: r.stop(keep=KEEP))
    return r


def _message(rcpt: str, lines: int) -> str:
    body = "".join(f"line {i} of a message that does not fit the spool\n" for i in range(lines))
    return f"From: Alice <alice@example.com>\nTo: {rcpt}\nSubject: spool full\n\n{body}"


def test_enospc_in_the_spool_is_a_tempfail_and_nothing_is_delivered(full_rig):
    r = full_rig
    big = f"full@{rigmod.SINK_DOMAIN}"
    with pytest.raises(smtplib.SMTPDataError) as refused:
        r.send_smtp(from_="alice@example.com", to=big, data=_message(big, 20_000))   # about 1 MB
    assert refused.value.smtp_code == 451, refused.value
    assert "No space left on device" in r.milter.log(), r.milter.log()[-2000:]
    small = f"small@{rigmod.SINK_DOMAIN}"
    r.send_smtp(from_="alice@example.com", to=small, data=_message(small, 10))
    got = r.sink.wait_for(small)
    assert rigmod.openssl_verify(got[0].message, r.trust_anchor, r.root / "verify").ok
    assert r.sink.for_rcpt(big) == [], "a message was delivered although its body could not be spooled"
