# SPDX-License-Identifier: Apache-2.0
"""Inbound decryption through a real Postfix: messages encrypted by `openssl cms -encrypt`
(AES-CBC, AES-GCM, RSA-OAEP, ECDH) to an identity of CertificateDir arrive decrypted with
X-SMIME-Decrypted; failures (no key, corrupt envelope, GCM tag mismatch, refused 3DES) are
delivered as they came with the cause in the header and the log line, or tempfailed;
a decrypt recipient and an outside one in one transaction are split with 452 4.5.3.
"""
from __future__ import annotations

import base64
import email
import os
import smtplib
import subprocess
from pathlib import Path

import pytest

import rig as rigmod
from rig import EXTERNAL_ADDR, run
from test_encryption import _pki_module

PARTNER = "partner@outside.example"
DORA = "dora@sink.test"
ED = "ed@sink.test"
OUTSIDER = "outsider@sink.test"
TABLE = f"{DORA} decrypt\n{ED} decrypt\nkeeper@sink.test keep\n"
TEXT = "Content-Type: text/plain; charset=us-ascii\n\nThe merger closes on Friday.\n"


def make_identity(pki: Path, address: str, out: Path, *, ec: bool = False) -> Path:
    """An identity file (certificate, intermediate, key) for `address` from the test PKI."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    m = _pki_module()
    issuer = x509.load_pem_x509_certificate((pki / "intermediate.pem").read_bytes())
    issuer_key = serialization.load_pem_private_key((pki / "intermediate.key").read_bytes(), None)
    key = m.ec_key() if ec else m.rsa_key()
    cert = m.leaf([address], key, issuer, issuer_key, **({"key_agreement": True} if ec else {}))
    out.write_bytes(m.pem(cert) + m.pem(issuer) + m.key_pem(key))
    os.chmod(out, 0o600)
    return out


@pytest.fixture(scope="module")
def dec_rig(request, milter_bin, tmp_path_factory):
    work = tmp_path_factory.mktemp("dec")
    r = rigmod.Rig(milter_bin=milter_bin)
    (r.root / "decryption.table").write_text(TABLE)
    r.milter_settings = rigmod.MilterSettings(
        mode="sv",
        extra=(f"TrustAnchors {r.root / 'pki' / 'root.pem'}\n"
               f"DecryptionTable {r.root / 'decryption.table'}\n"))
    r.start()
    request.addfinalizer(r.stop)
    r.keys = {DORA: make_identity(r.pki_dir, DORA, r.pki_dir / "certs" / "dora.pem"),
              ED: make_identity(r.pki_dir, ED, r.pki_dir / "certs" / "ed.pem", ec=True),
              "stranger": make_identity(r.pki_dir, DORA, work / "stranger.pem")}
    r.milter.reload()
    rigmod.wait_until(lambda: "reloaded" in r.milter.log(), 30, "the reload")
    r.work = work
    return r


def encrypted(work: Path, rcpt: str, cert: Path, subject: str, options: list[str], content: str = TEXT) -> str:
    (work / "in.txt").write_text(content)
    cp = run(["openssl", "cms", "-encrypt", "-in", str(work / "in.txt"), "-recip", str(cert), *options], check=False)
    assert cp.returncode == 0, cp.stderr.decode()
    return f"From: {PARTNER}\nTo: {rcpt}\nSubject: {subject}\nMessage-ID: <{subject.replace(' ', '-')}@outside.example>\n" \
        + cp.stdout.decode()


def delivered_with(r, rcpt: str, subject: str) -> rigmod.Delivered:
    def found():
        got = [d for d in r.sink.for_rcpt(rcpt) if email.message_from_bytes(d.message).get("Subject") == subject]
        return got[0] if got else None
    return rigmod.wait_until(found, rigmod.DELIVERY_TIMEOUT, f"{subject!r} for {rcpt}")


def header(d: rigmod.Delivered, name: str) -> str | None:
    value = d.parsed().get(name)
    return None if value is None else " ".join(str(value).split())


@pytest.mark.parametrize("rcpt,options", [
    (DORA, ["-aes256"]),
    (DORA, ["-aes-256-gcm"]),
    (DORA, ["-aes128", "-keyopt", "rsa_padding_mode:oaep"]),
    (ED, ["-aes256"]),
    (ED, ["-aes-128-gcm"]),
], ids=["cbc", "gcm", "oaep", "ec-cbc", "ec-gcm"])
def test_openssl_envelopes_arrive_decrypted(dec_rig, rcpt, options):
    subject = f"openssl {' '.join(options)} {rcpt}"
    dec_rig.send_smtp(from_=PARTNER, to=rcpt, data=encrypted(dec_rig.work, rcpt, dec_rig.keys[rcpt], subject, options),
                      external=True)
    d = delivered_with(dec_rig, rcpt, subject)
    msg = d.parsed()
    assert msg.get_content_type() == "text/plain", msg.get("Content-Type")
    assert msg.get_payload().strip() == "The merger closes on Friday."
    value = header(d, "X-SMIME-Decrypted")
    assert value and value.startswith("yes (by test.example; identity "), value
    assert ("GCM" in value) == ("gcm" in options[-1] or "gcm" in options[0]), value
    assert "smime=none" in header(d, "Authentication-Results")
    assert "decryption=decrypted" in dec_rig.milter.log()


def test_inner_signature_is_verified_after_decryption(dec_rig, tmp_path):
    alice = dec_rig.pki_dir / "certs" / "alice.pem"
    (tmp_path / "in.txt").write_text(TEXT)
    signed = run(["openssl", "cms", "-sign", "-in", str(tmp_path / "in.txt"), "-signer", str(alice), "-md", "sha256",
                  "-certfile", str(dec_rig.pki_dir / "intermediate.pem")]).stdout
    content = b"\n".join(l for l in signed.split(b"\n") if not l.startswith(b"MIME-Version")).decode()
    subject = "signed inside"
    data = encrypted(dec_rig.work, DORA, dec_rig.keys[DORA], subject, ["-aes256"], content=content)
    data = data.replace(f"From: {PARTNER}", "From: alice@example.com")
    dec_rig.send_smtp(from_="alice@example.com", to=DORA, data=data, external=True)
    d = delivered_with(dec_rig, DORA, subject)
    assert d.parsed().get_content_type() == "multipart/signed"
    assert "smime=pass" in header(d, "Authentication-Results"), header(d, "Authentication-Results")
    assert header(d, "X-SMIME-Decrypted").startswith("yes")


def tamper_gcm(data: str) -> str:
    head, body = data.split("\n\n", 1)
    der = bytearray(base64.b64decode(body))
    der[-3] ^= 0x40
    return head + "\n\n" + base64.encodebytes(bytes(der)).decode()


def truncate(data: str) -> str:
    head, body = data.split("\n\n", 1)
    der = base64.b64decode(body)
    return head + "\n\n" + base64.encodebytes(der[: len(der) // 2]).decode()


def test_failures_are_delivered_as_they_came_with_the_cause(dec_rig):
    cases = {
        "no_key": encrypted(dec_rig.work, DORA, dec_rig.keys["stranger"], "wrong key", ["-aes256"]),
        "integrity": tamper_gcm(encrypted(dec_rig.work, DORA, dec_rig.keys[DORA], "tampered gcm", ["-aes-256-gcm"])),
        "refused_cipher": encrypted(dec_rig.work, DORA, dec_rig.keys[DORA], "triple des", ["-des3"]),
    }
    for cause, data in cases.items():
        subject = email.message_from_string(data)["Subject"]
        dec_rig.send_smtp(from_=PARTNER, to=DORA, data=data, external=True)
        d = delivered_with(dec_rig, DORA, subject)
        assert d.parsed().get_content_type() == "application/pkcs7-mime", cause
        value = header(d, "X-SMIME-Decrypted")
        assert value and value.startswith(f"failed (cause={cause};"), (cause, value)
        assert f"decrypt_cause={cause}" in dec_rig.milter.log()
    # A truncated envelope is not recognised as one: it goes on untouched.
    data = truncate(encrypted(dec_rig.work, DORA, dec_rig.keys[DORA], "truncated", ["-aes256"]))
    dec_rig.send_smtp(from_=PARTNER, to=DORA, data=data, external=True)
    d = delivered_with(dec_rig, DORA, "truncated")
    assert d.parsed().get_content_type() == "application/pkcs7-mime"


def test_a_forged_decrypted_header_is_removed(dec_rig):
    data = "X-SMIME-Decrypted: yes (by test.example; trust me)\n" + \
        encrypted(dec_rig.work, OUTSIDER, dec_rig.keys[DORA], "forged header", ["-aes256"])
    dec_rig.send_smtp(from_=PARTNER, to=OUTSIDER, data=data, external=True)
    d = delivered_with(dec_rig, OUTSIDER, "forged header")
    assert header(d, "X-SMIME-Decrypted") is None
    assert d.parsed().get_content_type() == "application/pkcs7-mime"


def test_mixed_transaction_is_split_and_the_outsider_gets_the_encrypted_original(dec_rig):
    subject = "mixed classes"
    data = encrypted(dec_rig.work, DORA, dec_rig.keys[DORA], subject, ["-aes256"])
    with smtplib.SMTP(EXTERNAL_ADDR, dec_rig.postfix.ext_port, local_hostname="client.example", timeout=30,
                      source_address=(EXTERNAL_ADDR, 0)) as s:
        refused = s.sendmail(PARTNER, [DORA, OUTSIDER], rigmod.crlf(data))
    assert set(refused) == {OUTSIDER}, refused
    code, text = refused[OUTSIDER]
    assert code == 452 and text.startswith(b"4.5.3"), (code, text)
    assert delivered_with(dec_rig, DORA, subject).parsed().get_content_type() == "text/plain"
    # The retry, alone: the encrypted original, byte for byte in its body.
    dec_rig.send_smtp(from_=PARTNER, to=OUTSIDER, data=data, external=True)
    d = delivered_with(dec_rig, OUTSIDER, subject)
    assert d.parsed().get_content_type() == "application/pkcs7-mime"
    assert header(d, "X-SMIME-Decrypted") is None
    assert d.body.strip() == data.split("\n\n", 1)[1].strip().encode()


def test_keep_stays_encrypted_and_says_so(dec_rig):
    data = encrypted(dec_rig.work, "keeper@sink.test", dec_rig.keys[DORA], "kept", ["-aes256"])
    dec_rig.send_smtp(from_=PARTNER, to="keeper@sink.test", data=data, external=True)
    d = delivered_with(dec_rig, "keeper@sink.test", "kept")
    assert d.parsed().get_content_type() == "application/pkcs7-mime"
    assert header(d, "X-SMIME-Decrypted") == "no (kept: keep)"


def test_on_decryption_error_tempfail(dec_rig):
    settings = dec_rig.milter_settings
    tempfail = rigmod.MilterSettings(mode=settings.mode, extra=settings.extra + "OnDecryptionError tempfail\n")
    dec_rig.milter.restart(tempfail)
    try:
        data = encrypted(dec_rig.work, DORA, dec_rig.keys["stranger"], "tempfail wrong key", ["-aes256"])
        with pytest.raises(smtplib.SMTPDataError) as refused:
            dec_rig.send_smtp(from_=PARTNER, to=DORA, data=data, external=True)
        assert refused.value.smtp_code == 451
        assert refused.value.smtp_error.startswith(b"4.7.5"), refused.value.smtp_error
    finally:
        dec_rig.milter.restart(settings)


def test_decrypt_command_prints_the_message_as_delivered(dec_rig, milter_bin):
    data = encrypted(dec_rig.work, DORA, dec_rig.keys[DORA], "offline", ["-aes-256-gcm"])
    cp = run([str(milter_bin), "decrypt", "--config", str(dec_rig.milter.config_path), "--rcpt", DORA],
             input=data.encode(), check=False)
    assert cp.returncode == 0, cp.stderr.decode()
    out = email.message_from_bytes(cp.stdout)
    assert out.get_content_type() == "text/plain"
    assert out.get_payload().strip() == "The merger closes on Friday."
    assert out["X-SMIME-Decrypted"].startswith("yes (")
    assert b"decryption=decrypted" in cp.stderr
    # Wrong key: as it came, with the cause.
    data = encrypted(dec_rig.work, DORA, dec_rig.keys["stranger"], "offline wrong", ["-aes256"])
    cp = run([str(milter_bin), "decrypt", "--config", str(dec_rig.milter.config_path), "--rcpt", DORA],
             input=data.encode(), check=False)
    assert cp.returncode == 0, cp.stderr.decode()
    out = email.message_from_bytes(cp.stdout)
    assert out.get_content_type() == "application/pkcs7-mime"
    assert out["X-SMIME-Decrypted"].startswith("failed (cause=no_key;")
