# SPDX-License-Identifier: Apache-2.0
"""Encryption through a real Postfix: the milter signs, then encrypts to the recipient's
certificate (from RecipientCertificateDir, or harvested from a verified inbound message), and
openssl, NSS cmsutil and gpgsm decrypt it with the recipient's key; recipients of different
classes in one transaction are split with 452 4.5.3; a `require` recipient without a
certificate never gets plaintext; the store survives kill -9 of the milter.
"""
from __future__ import annotations

import base64
import contextlib
import importlib.util
import email
import os
import signal
import smtplib
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

import rig as rigmod
from rig import INTERNAL_ADDR, EXTERNAL_ADDR, crlf, run

ALICE = "alice@example.com"
TABLE = ("dave@sink.test      require\n"
         "erin@sink.test      encrypt\n"
         "nocert@sink.test    require\n"
         "frank@sink.test     encrypt\n"
         "*@sink.test         never\n")
TEXT = "Content-Type: text/plain; charset=us-ascii\n\nThe contract, as agreed.\n"


def _pki_module():
    spec = importlib.util.spec_from_file_location("make_test_pki", rigmod.PKI_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_recipient(pki: Path, address: str, out: Path, *, expired: bool = False, untrusted: bool = False,
                   bits: int = 2048) -> Path:
    """A certificate for `address` from the test PKI's intermediate (or, `untrusted`, from a root
    nobody trusts): `out` holds the certificate, its issuer and the key (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    m = _pki_module()
    if untrusted:
        issuer_key = m.rsa_key()
        issuer = m.ca_cert(m.name("Untrusted Root", org="elsewhere"), issuer_key,
                           m.name("Untrusted Root", org="elsewhere"), issuer_key, 0)
    else:
        issuer = x509.load_pem_x509_certificate((pki / "intermediate.pem").read_bytes())
        issuer_key = serialization.load_pem_private_key((pki / "intermediate.key").read_bytes(), None)
    key = m.rsa_key(bits)
    window = {"not_before": m.NOW - 400 * m.DAY, "not_after": m.NOW - m.DAY} if expired else {}
    cert = m.leaf([address], key, issuer, issuer_key, **window)
    out.write_bytes(m.pem(cert) + m.pem(issuer) + m.key_pem(key))
    os.chmod(out, 0o600)
    return out


@pytest.fixture(scope="module")
def enc_rig(request, milter_bin, tmp_path_factory):
    work = tmp_path_factory.mktemp("enc")
    r = rigmod.Rig(milter_bin=milter_bin)
    recipients = r.root / "recipients"
    recipients.mkdir()
    (r.root / "enc.table").write_text(TABLE)
    r.milter_settings = rigmod.MilterSettings(
        mode="sv",
        extra=(f"TrustAnchors {r.root / 'pki' / 'root.pem'}\n"
               f"EncryptionTable {r.root / 'enc.table'}\n"
               f"CertificateStore sqlite:{r.root / 'store.sqlite'}\n"
               f"RecipientCertificateDir {recipients}\n"))
    r.start()
    request.addfinalizer(r.stop)
    # dave's and erin's certificates are dropped in and loaded by a reload.
    keys = {}
    for name in ("dave", "erin"):
        keys[name] = make_recipient(r.pki_dir, f"{name}@sink.test", work / f"{name}.pem")
        pem = keys[name].read_bytes()
        (recipients / f"{name}.pem").write_bytes(pem[:pem.index(b"-----BEGIN PRIVATE KEY-----")])
    r.milter.reload()
    rigmod.wait_until(lambda: "reloaded" in r.milter.log(), 30, "the reload")
    r.keys = keys
    r.work = work
    return r


def message(rcpt: str, subject: str) -> str:
    return (f"From: Alice <{ALICE}>\nTo: {rcpt}\nSubject: {subject}\nDate: Mon, 23 Nov 2026 10:00:00 +0000\n"
            f"Message-ID: <{subject.replace(' ', '-')}@example.com>\nMIME-Version: 1.0\n{TEXT}")


def delivered_with(r: rigmod.Rig, rcpt: str, subject: str) -> rigmod.Delivered:
    """The one message for `rcpt` with this Subject (the sink's files are not in arrival order)."""
    def found():
        got = [d for d in r.sink.for_rcpt(rcpt) if email.message_from_bytes(d.message).get("Subject") == subject]
        return got[0] if got else None
    return rigmod.wait_until(found, rigmod.DELIVERY_TIMEOUT, f"{subject!r} for {rcpt}")


def enveloped_der(delivered: rigmod.Delivered) -> bytes:
    msg = email.message_from_bytes(delivered.message)
    assert msg.get_content_type() == "application/pkcs7-mime", msg.get("Content-Type")
    assert "enveloped-data" in msg.get("Content-Type")
    return base64.b64decode(msg.get_payload())


def openssl_decrypt(der: bytes, key: Path, work: Path) -> bytes:
    (work / "in.der").write_bytes(der)
    cp = run(["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(work / "in.der"),
              "-recip", str(key), "-inkey", str(key)], check=False)
    assert cp.returncode == 0, cp.stderr.decode()
    return cp.stdout


def openssl_verify_entity(entity: bytes, ca: Path, work: Path) -> bytes:
    (work / "signed.eml").write_bytes(entity)
    cp = run(["openssl", "cms", "-verify", "-in", str(work / "signed.eml"), "-CAfile", str(ca), "-purpose", "any"], check=False)
    assert cp.returncode == 0, cp.stderr.decode()
    return cp.stdout


def test_encrypted_to_a_dropped_in_certificate_decrypts_with_openssl_nss_and_gpgsm(enc_rig, tmp_path):
    rcpt = "dave@sink.test"
    enc_rig.send_smtp(from_=ALICE, to=rcpt, data=message(rcpt, "dropped in"))
    delivered = enc_rig.sink.wait_for(rcpt)[0]
    der = enveloped_der(delivered)
    key = enc_rig.keys["dave"]
    entity = openssl_decrypt(der, key, tmp_path)
    # Signed first, then encrypted: the decrypted entity is alice's multipart/signed.
    assert entity.startswith(b"Content-Type: multipart/signed"), entity[:200]
    content = openssl_verify_entity(entity, enc_rig.trust_anchor, tmp_path)
    assert content.replace(b"\r\n", b"\n") == TEXT.encode()
    # NSS cmsutil -D, with the key in a throw-away database.
    db = tmp_path / "nss"
    db.mkdir()
    run(["certutil", "-N", "--empty-password", "-d", f"sql:{db}"])
    run(["openssl", "pkcs12", "-export", "-in", str(key), "-inkey", str(key), "-passout", "pass:p12", "-name", "r",
         "-out", str(tmp_path / "k.p12")])
    run(["pk12util", "-i", str(tmp_path / "k.p12"), "-d", f"sql:{db}", "-W", "p12", "-K", ""])
    (tmp_path / "in.der").write_bytes(der)
    nss = run(["cmsutil", "-D", "-i", str(tmp_path / "in.der"), "-d", f"sql:{db}"], check=False)
    assert nss.returncode == 0, nss.stderr.decode()
    assert nss.stdout == entity
    # gpgsm --decrypt, the key imported as a legacy PKCS#12 (what gpgsm 2.2 reads).
    with gpgsm_home_with_key(key, tmp_path) as env:
        dec = subprocess.run(["gpgsm", "--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--decrypt",
                              str(tmp_path / "in.der")], input=b"p12\n", env=env, capture_output=True, timeout=60)
        assert dec.returncode == 0, dec.stderr.decode()
        assert dec.stdout == entity
    assert "encrypted=1" in enc_rig.milter.log()


@contextlib.contextmanager
def gpgsm_home_with_key(key: Path, tmp_path: Path, attempts: int = 6) -> Iterator[dict]:
    """A throw-away GnuPG home holding `key` (PEM key + certificate), imported as legacy PKCS#12;
    yields its environment (rig.gnupg_home removes it afterwards).

    gpgsm 2.2 refuses about one in fifty of the PKCS#12 files OpenSSL writes ("error parsing or
    decrypting the PKCS#12 file"), depending only on the random salt, with every PBE choice; a
    fresh export into a fresh home imports, so this tries a few before it fails."""
    errors = []
    for attempt in range(1, attempts + 1):
        with rigmod.gnupg_home() as (_, env):
            p12 = tmp_path / f"l{attempt}.p12"
            run(["openssl", "pkcs12", "-export", "-in", str(key), "-inkey", str(key), "-passout", "pass:p12", "-name", "r",
                 "-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1", "-out", str(p12)])
            imp = subprocess.run(["gpgsm", "--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import",
                                  str(p12)], input=b"p12\n", env=env, capture_output=True, timeout=60)
            listed = subprocess.run(["gpgsm", "--batch", "--with-colons", "--list-secret-keys"], env=env,
                                    capture_output=True, timeout=60)
            if imp.returncode == 0 and any(l.startswith(b"crs:") for l in listed.stdout.splitlines()):
                yield env
                return
            errors.append(f"attempt {attempt}: {imp.stderr.decode(errors='replace')}")
    raise AssertionError("gpgsm --import failed:\n" + "\n".join(errors))


def test_mixed_recipients_are_split_with_452_4_5_3(enc_rig, tmp_path):
    """dave (require, certificate), erin (encrypt, certificate, but another class) and an
    unlisted-never recipient in one SMTP transaction: the first fixes the class, the others
    get 452 4.5.3 and nothing of this transaction reaches them."""
    rcpts = ["dave@sink.test", "erin@sink.test", "plain-mixed@sink.test"]
    before = {r: len(enc_rig.sink.for_rcpt(r)) for r in rcpts}
    with smtplib.SMTP(INTERNAL_ADDR, enc_rig.postfix.int_port, local_hostname="client.example", timeout=30) as s:
        refused = s.sendmail(ALICE, rcpts, crlf(message("dave@sink.test", "mixed")))
    assert set(refused) == {"erin@sink.test", "plain-mixed@sink.test"}, refused
    for r in ("erin@sink.test", "plain-mixed@sink.test"):
        code, text = refused[r]
        assert code == 452 and text.startswith(b"4.5.3"), (code, text)
    got = delivered_with(enc_rig, "dave@sink.test", "mixed")
    assert [r.split()[0] for r in got.rcpts] == ["<dave@sink.test>"]
    openssl_decrypt(enveloped_der(got), enc_rig.keys["dave"], tmp_path)
    # erin, alone in a transaction of her own (as a retrying client sends her), gets hers encrypted.
    enc_rig.send_smtp(from_=ALICE, to="erin@sink.test", data=message("erin@sink.test", "erin alone"))
    openssl_decrypt(enveloped_der(delivered_with(enc_rig, "erin@sink.test", "erin alone")), enc_rig.keys["erin"], tmp_path)
    assert len(enc_rig.sink.for_rcpt("plain-mixed@sink.test")) == before["plain-mixed@sink.test"]


def test_require_without_certificate_never_gets_plaintext(enc_rig):
    rcpt = "nocert@sink.test"
    with smtplib.SMTP(INTERNAL_ADDR, enc_rig.postfix.int_port, local_hostname="client.example", timeout=30) as s:
        s.ehlo()
        s.mail(ALICE)
        code, text = s.rcpt(rcpt)
    assert (code, text[:5]) == (450, b"4.7.0"), (code, text)
    # Submitted with the sendmail command (not split per recipient): the whole message waits.
    sent = enc_rig.send_sendmail(from_=ALICE, to=[rcpt, "plain-local@sink.test"], data=message(rcpt, "local"))
    assert sent.accepted, sent.transcript
    rigmod.wait_until(lambda: "4.7.0" in enc_rig.postfix.log_text() and "milter" in enc_rig.postfix.log_text(),
                      60, "the milter's refusal in the Postfix log")
    assert enc_rig.sink.for_rcpt(rcpt) == []
    assert enc_rig.sink.for_rcpt("plain-local@sink.test") == []


def signed_inbound(r: rigmod.Rig, signer: Path, sender: str, work: Path, digest: str = "sha256") -> str:
    (work / "entity.txt").write_bytes(crlf(TEXT))
    out = run(["openssl", "cms", "-sign", "-in", str(work / "entity.txt"), "-md", digest, "-signer", str(signer),
               "-certfile", str(r.pki_dir / "intermediate.pem")]).stdout.decode().replace("\r\n", "\n")
    if out.startswith("MIME-Version:"):
        out = out.split("\n", 1)[1]
    return (f"From: {sender}\nTo: alice-in@sink.test\nSubject: signed by {sender}\n"
            f"Date: Mon, 23 Nov 2026 10:00:00 +0000\nMIME-Version: 1.0\n{out}")


def test_a_harvested_certificate_is_used_for_the_next_outbound_message(enc_rig, tmp_path):
    frank = make_recipient(enc_rig.pki_dir, "frank@sink.test", tmp_path / "frank.pem")
    # Before: frank (encrypt) has no certificate, so mail to him goes in plaintext.
    enc_rig.send_smtp(from_=ALICE, to="frank@sink.test", data=message("frank@sink.test", "before"))
    first = delivered_with(enc_rig, "frank@sink.test", "before")
    assert b"application/pkcs7-mime" not in first.message
    # frank signs a message to us (inbound, from the external side): verified, harvested.
    enc_rig.send_smtp(from_="frank@sink.test", to="alice-in@sink.test", external=True,
                      data=signed_inbound(enc_rig, frank, "frank@sink.test", tmp_path))
    inbound = delivered_with(enc_rig, "alice-in@sink.test", "signed by frank@sink.test")
    assert b"smime=pass" in inbound.message
    rigmod.wait_until(lambda: "harvest=kept" in enc_rig.milter.log(), 30, "the harvest")
    enc_rig.send_smtp(from_=ALICE, to="frank@sink.test", data=message("frank@sink.test", "after"))
    second = delivered_with(enc_rig, "frank@sink.test", "after")
    entity = openssl_decrypt(enveloped_der(second), frank, tmp_path)
    assert openssl_verify_entity(entity, enc_rig.trust_anchor, tmp_path).replace(b"\r\n", b"\n") == TEXT.encode()


@pytest.mark.parametrize("kind", ["expired", "untrusted", "weak-digest", "weak-key", "not-from"])
def test_bad_certificates_are_never_harvested_nor_used(enc_rig, tmp_path, kind):
    """Signed inbound mail whose certificate is expired, untrusted, weak (SHA-1 signature, RSA-1024)
    or names another address than From: nothing is harvested, and the next outbound message
    to that address (table: encrypt) goes unencrypted."""
    address = f"bad-{kind}@sink.test"
    (enc_rig.root / "enc.table").write_text(f"{address} encrypt\n" + TABLE)
    enc_rig.milter.reload()
    digest = "sha256"
    if kind == "expired":
        signer = make_recipient(enc_rig.pki_dir, address, tmp_path / "s.pem", expired=True)
    elif kind == "untrusted":
        signer = make_recipient(enc_rig.pki_dir, address, tmp_path / "s.pem", untrusted=True)
    elif kind == "weak-digest":
        signer, digest = make_recipient(enc_rig.pki_dir, address, tmp_path / "s.pem"), "sha1"
    elif kind == "weak-key":
        signer = make_recipient(enc_rig.pki_dir, address, tmp_path / "s.pem", bits=1024)
    else:
        signer = make_recipient(enc_rig.pki_dir, "someone-else@sink.test", tmp_path / "s.pem")
    enc_rig.send_smtp(from_=address, to="alice-in@sink.test", external=True,
                      data=signed_inbound(enc_rig, signer, address, tmp_path, digest=digest))
    rigmod.wait_until(lambda: [d for d in enc_rig.sink.for_rcpt("alice-in@sink.test") if address.encode() in d.message],
                      30, "the inbound message")
    inbound = [d for d in enc_rig.sink.for_rcpt("alice-in@sink.test") if address.encode() in d.message][0]
    assert b"smime=pass" not in inbound.message
    enc_rig.send_smtp(from_=ALICE, to=address, data=message(address, f"to {kind}"))
    out = enc_rig.sink.wait_for(address)[0]
    assert b"application/pkcs7-mime" not in out.message
    certs = [str(enc_rig.milter.binary), "certs", "--recipients", "-c", str(enc_rig.milter.config_path)]
    assert address.encode() not in run([*certs, "list"]).stdout
    assert address.encode() in run([*certs, "log"]).stdout or kind == "not-from"


def test_the_store_survives_kill_9_while_harvesting(enc_rig, tmp_path):
    """kill -9 of the milter while clients send it signed inbound mail to harvest from: at
    restart the store opens (the integrity check at open), `PRAGMA integrity_check` says ok,
    and what was committed is there."""
    import threading
    erin = enc_rig.keys["erin"]
    data = signed_inbound(enc_rig, erin, "erin@sink.test", tmp_path)
    kept_before = enc_rig.milter.log().count("harvest=kept")
    stop = threading.Event()

    def sender():
        while not stop.is_set():
            try:
                enc_rig.send_smtp(from_="erin@sink.test", to="alice-in@sink.test", external=True, data=data)
            except (smtplib.SMTPException, OSError):
                pass  # the milter is down: Postfix tempfails
    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        rigmod.wait_until(lambda: enc_rig.milter.log().count("harvest=kept") >= kept_before + 5, 60, "harvests under way")
        os.killpg(enc_rig.milter.proc.pid, signal.SIGKILL)
        enc_rig.milter.proc.wait(timeout=10)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    enc_rig.milter.stop()
    enc_rig.milter.start()
    check = run(["sqlite3", str(enc_rig.root / "store.sqlite"), "PRAGMA integrity_check"], check=False)
    if check.returncode == 0:
        assert check.stdout.strip() == b"ok"
    certs = [str(enc_rig.milter.binary), "certs", "--recipients", "-c", str(enc_rig.milter.config_path)]
    assert b"erin@sink.test" in run([*certs, "list"]).stdout
    assert run([*certs, "log"]).stdout.count(b"erin@sink.test") >= 5
    # And the restarted milter harvests again.
    enc_rig.send_smtp(from_="erin@sink.test", to="alice-in@sink.test", external=True, data=data)
    rigmod.wait_until(lambda: "harvest=kept" in enc_rig.milter.log().split("listening")[-1], 30, "a harvest after restart")


def test_postfix_as_the_client_delivers_each_class_in_its_own_transaction(enc_rig, tmp_path):
    """A first Postfix (no milter) relays one message for three recipients of different classes
    to the milter's Postfix: the 452 4.5.3 makes its smtp client deliver each class in a
    transaction of its own; dave's and erin's copies arrive encrypted, the third in plaintext."""
    hop = rigmod.Rig()
    hop.start()
    try:
        hop.postfix.postconf(f"myhostname=hop1.smime-milter.test",
                             f"transport_maps=inline:{{ {rigmod.SINK_DOMAIN}=smtp:[{INTERNAL_ADDR}]:{enc_rig.postfix.int_port} }}",
                             "minimal_backoff_time=1s", "maximal_backoff_time=2s", "queue_run_delay=1s")
        rcpts = ["dave@sink.test", "erin@sink.test", "plain-hop@sink.test"]
        before = {r: len(enc_rig.sink.for_rcpt(r)) for r in rcpts}
        hop.send_smtp(from_=ALICE, to=rcpts, data=message("dave@sink.test", "two hops"))

        def arrived():
            hop.postfix.flush()
            return all(len(enc_rig.sink.for_rcpt(r)) > before[r] for r in rcpts)
        rigmod.wait_until(arrived, 120, "all three copies through the second hop", interval=2)
        copies = {r: delivered_with(enc_rig, r, "two hops") for r in rcpts}
        for r, d in copies.items():
            assert [x.split()[0] for x in d.rcpts] == [f"<{r}>"], d.rcpts  # one recipient per transaction
        openssl_decrypt(enveloped_der(copies["dave@sink.test"]), enc_rig.keys["dave"], tmp_path)
        openssl_decrypt(enveloped_der(copies["erin@sink.test"]), enc_rig.keys["erin"], tmp_path)
        assert b"application/pkcs7-mime" not in copies["plain-hop@sink.test"].message
        assert "452 4.5.3" in hop.postfix.log_text()
    finally:
        hop.stop()


def test_sign_command_with_recipients_decides_as_the_milter(enc_rig, tmp_path):
    """`smime-milter sign --rcpt`: the same decision offline: encrypted to dave, plaintext-signed
    for an unlisted-never recipient, refused (exit 2, the milter's reply) for nocert."""
    sign = [str(enc_rig.milter.binary), "sign", "--config", str(enc_rig.milter.config_path), "--from", ALICE]
    body = crlf(message("dave@sink.test", "offline"))
    out = run([*sign, "--rcpt", "dave@sink.test"], input=body)
    msg = email.message_from_bytes(out.stdout)
    assert "enveloped-data" in msg.get("Content-Type")
    entity = openssl_decrypt(base64.b64decode(msg.get_payload()), enc_rig.keys["dave"], tmp_path)
    assert entity.startswith(b"Content-Type: multipart/signed")
    assert b"encrypted=1" in out.stderr
    plain = run([*sign, "--rcpt", "someone@sink.test"], input=body)
    assert b"multipart/signed" in plain.stdout and b"pkcs7-mime" not in plain.stdout
    refused = run([*sign, "--rcpt", "nocert@sink.test", "--rcpt", "dave@sink.test"], input=body, check=False)
    assert refused.returncode == 2 and b"450 4.7.0" in refused.stderr, refused.stderr
    assert refused.stdout == body


def test_a_store_that_cannot_open_is_a_start_error(enc_rig, tmp_path):
    """With an EncryptionTable, the milter does not start without its store (exit 78, the
    reason named); a damaged store file is refused the same way."""
    base = enc_rig.milter.config_path.read_text()
    for store, words in ((tmp_path / "missing-dir" / "store.sqlite", "CertificateStore"),
                         (tmp_path / "damaged.sqlite", "damaged.sqlite")):
        if words == "damaged.sqlite":
            store.write_bytes(b"not a database, " * 512)
        conf = tmp_path / "start.conf"
        conf.write_text("\n".join(line for line in base.splitlines()
                                  if not line.startswith(("CertificateStore", "Socket")))
                        + f"\nSocket inet:{rigmod.free_port()}@{INTERNAL_ADDR}\nCertificateStore sqlite:{store}\n")
        cp = run([str(enc_rig.milter.binary), "run", "--config", str(conf)], check=False, timeout=60)
        assert cp.returncode == 78, cp.stderr.decode()
        assert words in cp.stderr.decode(), cp.stderr.decode()
