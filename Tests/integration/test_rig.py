# SPDX-License-Identifier: Apache-2.0
"""Self-tests of the Postfix rig, without the milter: they prove that what the signing tests
rely on is real (client addresses, SASL, the sendmail command, exact delivery, the 8-bit
down-conversion of the -8 route, tempfail when the milter is down) and that the machine's
/etc/postfix is left alone."""
from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

import rig as rigmod
from rig import crlf, lf


def simple_message(rcpt: str, subject: str, sender: str = "alice@example.com") -> bytes:
    return crlf(f"From: {sender}\nTo: {rcpt}\nSubject: {subject}\n"
                f"Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <{subject.replace(' ', '.')}@example.com>\n"
                "X-Rig-Test: yes\n\nLine one.\n\nLine three, with a trailing space \n.leading dot\n")


def without_received(message: bytes) -> bytes:
    """The message without the Received fields Postfix prepended (each may be folded)."""
    lines = message.split(b"\n")
    i = 0
    while i < len(lines) and lines[i].startswith(b"Received:"):
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\n".join(lines[i:])


def snapshot(directory: str) -> dict[str, tuple[str, float, int]]:
    out = {}
    for root, dirs, files in os.walk(directory):
        for name in files + dirs:
            p = os.path.join(root, name)
            st = os.lstat(p)
            digest = ""
            if os.path.isfile(p) and not os.path.islink(p):
                digest = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            out[p] = (digest, st.st_mtime, st.st_mode)
    return out


def test_rig_leaves_etc_postfix_alone():
    before = snapshot("/etc/postfix")
    r = rigmod.Rig()
    root = r.root
    with r:
        assert r.postfix.master_pid() is not None
        assert str(root) in rigmod.run(["postconf", "-c", str(r.postfix.config_dir), "-h", "queue_directory"]).stdout.decode()
    assert snapshot("/etc/postfix") == before
    assert not root.exists(), "the rig's directory is removed on stop"
    pid_file = root / "queue" / "pid" / "master.pid"
    assert not pid_file.exists()


def test_internal_swaks_delivery_is_exact(plain_rig, rcpt):
    msg = simple_message(rcpt, "exact swaks")
    res = plain_rig.send_swaks(from_="alice@example.com", to=rcpt, data=msg)
    assert res.accepted, res.transcript
    [d] = plain_rig.sink.wait_for(rcpt)
    assert d.mail_from.startswith("<alice@example.com>")
    assert b"[127.0.0.1]" in d.message.split(b"\n\n")[0]
    assert without_received(d.message) == lf(msg)


def test_smtplib_delivery_is_exact(plain_rig, rcpt):
    msg = simple_message(rcpt, "exact smtplib")
    plain_rig.send_smtp(from_="alice@example.com", to=rcpt, data=msg)
    [d] = plain_rig.sink.wait_for(rcpt)
    assert without_received(d.message) == lf(msg)


def test_external_client_comes_from_127_0_0_2(plain_rig, rcpt):
    res = plain_rig.send_swaks(from_="alice@example.com", to=rcpt, data=simple_message(rcpt, "external"),
                               external=True)
    assert res.accepted, res.transcript
    [d] = plain_rig.sink.wait_for(rcpt)
    received = d.message.split(b"\n\n")[0].decode()
    assert "[127.0.0.2]" in received and "[127.0.0.1]" not in received
    assert "with ESMTP id" in received  # not ESMTPA: no SASL


def test_sasl_login_on_external_listener(plain_rig, rcpt):
    res = plain_rig.send_swaks(from_="alice@example.com", to=rcpt, data=simple_message(rcpt, "sasl"),
                               external=True, auth=("alice@example.com", rigmod.SASL_PASSWORDS["alice"]))
    assert res.accepted, res.transcript
    assert "235 2.7.0 Authentication successful" in res.transcript
    [d] = plain_rig.sink.wait_for(rcpt)
    assert "with ESMTPA id" in d.message.split(b"\n\n")[0].decode()
    assert "sasl_username=alice@example.com" in plain_rig.postfix.log_text()


def test_sasl_wrong_password_is_refused(plain_rig, rcpt):
    res = plain_rig.send_swaks(from_="bob@example.com", to=rcpt, data=simple_message(rcpt, "badpw"),
                               external=True, auth=("bob@example.com", "not-the-password"))
    assert not res.accepted
    assert "535" in res.transcript


def test_sendmail_command_uses_the_private_instance(plain_rig, rcpt):
    msg = simple_message(rcpt, "sendmail")
    res = plain_rig.send_sendmail(from_="alice@example.com", to=rcpt, data=msg)
    assert res.accepted, res.transcript
    [d] = plain_rig.sink.wait_for(rcpt)
    assert d.mail_from.startswith("<alice@example.com>")
    assert b"by mta.smime-milter.test (Postfix, from userid" in d.message
    assert without_received(d.message) == lf(msg)


EIGHT_BIT = crlf("From: alice@example.com\nTo: {rcpt}\nSubject: 8bit\nMIME-Version: 1.0\n"
                 "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n").decode() \
    + "Grüße aus Köln, naïve café.\r\n"


def test_8bitmime_route_keeps_8bit_and_dash8_route_converts(plain_rig, rcpt):
    """The -8 sink is what makes the signing test 5 meaningful: Postfix really rewrites 8-bit
    mail on that route (and does not on the 8BITMIME route)."""
    rcpt8 = rcpt.replace(rigmod.SINK_DOMAIN, rigmod.SINK8_DOMAIN)
    for to in (rcpt, rcpt8):
        res = plain_rig.send_swaks(from_="alice@example.com", to=to, data=EIGHT_BIT.format(rcpt=to).encode())
        assert res.accepted, res.transcript
    [kept] = plain_rig.sink.wait_for(rcpt)
    [converted] = plain_rig.sink8.wait_for(rcpt8)
    assert "Grüße aus Köln".encode() in kept.body
    assert all(b < 0x80 for b in converted.message)
    assert b"Content-Transfer-Encoding: quoted-printable" in converted.message
    assert b"Gr=C3=BC=C3=9Fe" in converted.body


def test_dash8_route_breaks_a_signature_over_8bit_content(plain_rig, rcpt, tmp_path):
    """A signature made over 8-bit content survives the 8BITMIME route and breaks on the -8 route:
    the failure the milter avoids by making the content 7-bit before signing."""
    rcpt8 = rcpt.replace(rigmod.SINK_DOMAIN, rigmod.SINK8_DOMAIN)
    pki = plain_rig.pki_dir
    content = crlf("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                   "Grüße aus Köln.\n")
    signed = rigmod.openssl_sign(content, pki / "certs" / "alice.pem", tmp_path,
                                 certfile=pki / "intermediate.pem")
    for to in (rcpt, rcpt8):
        msg = crlf(f"From: alice@example.com\nTo: {to}\nSubject: signed 8bit\n".encode()) + crlf(signed)
        res = plain_rig.send_swaks(from_="alice@example.com", to=to, data=msg)
        assert res.accepted, res.transcript
    [kept] = plain_rig.sink.wait_for(rcpt)
    [converted] = plain_rig.sink8.wait_for(rcpt8)
    ok = rigmod.openssl_verify(kept.message, plain_rig.trust_anchor, tmp_path)
    assert ok.ok, ok.output
    broken = rigmod.openssl_verify(converted.message, plain_rig.trust_anchor, tmp_path)
    assert not broken.ok
    assert "digest failure" in broken.output.lower() or "verification failure" in broken.output.lower()

    # What broke it is diagnosed from the signed messageDigest: Postfix's own 8bit -> QP
    # conversion, proven by re-creating the original bytes (the diagnosis).
    binary = rigmod.milter_binary()
    if binary is None:
        pytest.skip("smime-milter is not built: the diagnosis part needs it")
    path = tmp_path / "converted.eml"
    path.write_bytes(converted.message)
    out = subprocess.run([str(binary), "diagnose", "--trust", str(plain_rig.trust_anchor), str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "smime=fail" in out.stdout
    assert "quoted-printable" in out.stdout and "(confirmed)" in out.stdout, out.stdout


def test_milter_down_smtp_client_gets_4xx_and_nothing_is_queued(dead_milter_rig, rcpt):
    r = dead_milter_rig
    res = r.send_swaks(from_="alice@example.com", to=rcpt, data=simple_message(rcpt, "down"))
    assert not res.accepted
    assert "451 4.7.1" in res.transcript
    assert r.postfix.queue_ids() == []
    time.sleep(2)  # give a wrongly accepted message the time to show up (negative check)
    assert r.sink.for_rcpt(rcpt) == []


def test_milter_down_sendmail_message_waits_in_maildrop(dead_milter_rig, rcpt):
    r = dead_milter_rig
    res = r.send_sendmail(from_="alice@example.com", to=rcpt, data=simple_message(rcpt, "down sendmail"))
    assert res.accepted, res.transcript  # postdrop took it
    # pickup hands it to cleanup, the milter connection fails, and the file stays in maildrop.
    def cleanup_rejects():
        return len([line for line in r.postfix.log_text().splitlines()
                    if "postfix/cleanup[" in line and "milter-reject: CONNECT" in line])
    rigmod.wait_until(lambda: cleanup_rejects() >= 1, 30, "cleanup's milter-reject in the maillog")
    assert len(r.postfix.maildrop_files()) == 1
    # A flush makes pickup try again: it fails the same way and the message still waits.
    r.postfix.flush()
    rigmod.wait_until(lambda: cleanup_rejects() >= 2, 30, "a second milter-reject after postqueue -f")
    assert len(r.postfix.maildrop_files()) == 1
    assert r.sink.for_rcpt(rcpt) == []


def test_verifier_helpers_accept_good_and_reject_tampered(plain_rig, tmp_path):
    """openssl/NSS/gpgsm helpers say yes to a good signature and no once one byte changed."""
    pki = plain_rig.pki_dir
    for opaque in (False, True):
        entity = crlf("Content-Type: text/plain; charset=us-ascii\n\nPay 100 EUR to Bob.\n")
        signed = crlf(rigmod.openssl_sign(entity, pki / "certs" / "alice.pem", tmp_path,
                                          certfile=pki / "intermediate.pem", opaque=opaque))
        msg = crlf(b"From: alice@example.com\nSubject: helper check\n") + signed
        if opaque:
            import base64
            head, _, body = lf(msg).partition(b"\n\n")
            der = bytearray(base64.b64decode(body))
            at = bytes(der).index(b"Pay 100")
            der[at + 4] = ord("9")
            tampered = head + b"\n\n" + base64.encodebytes(bytes(der))
        else:
            tampered = msg.replace(b"Pay 100", b"Pay 900")
        assert tampered != msg
        for verify in (rigmod.nss_verify, rigmod.gpgsm_verify):
            good, log = verify(msg, plain_rig.trust_anchor, tmp_path)
            assert good, log
            bad, log = verify(tampered, plain_rig.trust_anchor, tmp_path)
            assert not bad, log
        assert rigmod.openssl_verify(msg, plain_rig.trust_anchor, tmp_path).ok
        assert not rigmod.openssl_verify(tampered, plain_rig.trust_anchor, tmp_path).ok
