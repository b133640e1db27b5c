# SPDX-License-Identifier: Apache-2.0
"""Inbound decryption through a real Postfix: messages encrypted by `openssl cms -encrypt`
(AES-CBC, AES-GCM, RSA-OAEP, ECDH), NSS `cmsutil -E` and `gpgsm --encrypt` to an identity of
CertificateDir, and the enveloped messages of ../shared/corpus with the keys given there, arrive
decrypted with X-SMIME-Decrypted and their inner signatures get the corpus's expected result;
encrypt-then-sign and sign-encrypt-sign (RFC 2634) are opened under their outer signature, which
is reported beside the inner result; failures (no key, corrupt envelope, GCM tag mismatch, refused 3DES) are
delivered as they came with the cause in the header and the log line, or tempfailed;
a decrypt recipient and an outside one in one transaction are split with 452 4.5.3.
"""
from __future__ import annotations

import base64
import email
import email.utils
import hashlib
import os
import re
import smtplib
import subprocess
from pathlib import Path

import pytest

import rig as rigmod
from rig import EXTERNAL_ADDR, run
from test_encryption import _pki_module

PARTNER = "partner@outside.example"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
# The corpus recipients whose keys ../shared/corpus gives (their certificates' addresses).
CORPUS_KEYS = {"Bob.crt": ("comm-central", "Bob@example.com"), "Fran.crt": ("comm-central", "Fran@example.com"),
               "Fran-ec.crt": ("comm-central", "Fran-ec@example.com"),
               "cert.pem": ("bc-java", "massi@direct.tiani-spirit.net")}
DORA = "dora@sink.test"
ED = "ed@sink.test"
OUTSIDER = "outsider@sink.test"
TABLE = f"{DORA} decrypt\n{ED} decrypt\nkeeper@sink.test keep\n" + "".join(f"{a} decrypt\n" for _, a in CORPUS_KEYS.values())
TEXT = "Content-Type: text/plain; charset=us-ascii\n\nThe merger closes on Friday.\n"


def make_identity(pki: Path, address: str, out: Path, *, ec: bool = False, expired: bool = False) -> Path:
    """An identity file (certificate, intermediate, key) for `address` from the test PKI."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    m = _pki_module()
    issuer = x509.load_pem_x509_certificate((pki / "intermediate.pem").read_bytes())
    issuer_key = serialization.load_pem_private_key((pki / "intermediate.key").read_bytes(), None)
    key = m.ec_key() if ec else m.rsa_key()
    dates = {"not_before": m.NOW - 800 * m.DAY, "not_after": m.NOW - 30 * m.DAY} if expired else {}
    cert = m.leaf([address], key, issuer, issuer_key, **({"key_agreement": True} if ec else {}), **dates)
    out.write_bytes(m.pem(cert) + m.pem(issuer) + m.key_pem(key))
    os.chmod(out, 0o600)
    return out


@pytest.fixture(scope="module")
def dec_rig(request, milter_bin, tmp_path_factory):
    work = tmp_path_factory.mktemp("dec")
    assert (CORPUS / "MANIFEST.tsv").is_file(), f"the corpus is missing at {CORPUS}"
    r = rigmod.Rig(milter_bin=milter_bin)
    (r.root / "decryption.table").write_text(TABLE)
    r.postfix.extra_relay_domains = sorted({a.split("@")[1] for _, a in CORPUS_KEYS.values()})
    # The rig's root, and Thunderbird's test CA for the corpus's inner signatures; written
    # after the rig has made its PKI (below), read by the milter at the reload.
    anchors = r.root / "anchors.pem"
    anchors.write_bytes((CORPUS / "anchors" / "comm-central" / "TestCA.pem").read_bytes())
    r.metrics_port = rigmod.free_port()
    r.milter_settings = rigmod.MilterSettings(
        mode="sv",
        extra=(f"TrustAnchors {anchors}\n"
               f"DecryptionTable {r.root / 'decryption.table'}\n"
               f"MetricsListen {rigmod.INTERNAL_ADDR}:{r.metrics_port}\n"))
    r.start()
    request.addfinalizer(r.stop)
    anchors.write_bytes((r.pki_dir / "root.pem").read_bytes()
                        + (CORPUS / "anchors" / "comm-central" / "TestCA.pem").read_bytes())
    for name, (source, address) in CORPUS_KEYS.items():
        keys = CORPUS / "keys" / source
        key = keys / ("key.pem" if name == "cert.pem" else name[:-4] + ".key")
        out = r.pki_dir / "certs" / f"corpus-{address.split('@')[0].lower()}.pem"
        out.write_bytes((keys / name).read_bytes() + b"\n" + key.read_bytes())
        os.chmod(out, 0o600)
    r.keys = {DORA: make_identity(r.pki_dir, DORA, r.pki_dir / "certs" / "dora.pem"),
              ED: make_identity(r.pki_dir, ED, r.pki_dir / "certs" / "ed.pem", ec=True),
              "stranger": make_identity(r.pki_dir, DORA, work / "stranger.pem"),
              # Old mail must stay readable: an expired certificate of dora's, and a superseded
              # pair that renewal moved to CertificateDir/archive/.
              "expired": make_identity(r.pki_dir, DORA, r.pki_dir / "certs" / "dora-2024.pem", expired=True)}
    (r.pki_dir / "certs" / "archive").mkdir()
    r.keys["archived"] = make_identity(r.pki_dir, DORA, r.pki_dir / "certs" / "archive" / f"{DORA}.1A2B.pem")
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


@pytest.mark.parametrize("which,identity", [("expired", "dora-2024"), ("archived", f"{DORA}.1A2B")])
def test_old_keys_still_decrypt(dec_rig, which, identity):
    """Mail encrypted to an expired or a superseded (archived) certificate of dora's still opens."""
    subject = f"to dora's {which} certificate"
    dec_rig.send_smtp(from_=PARTNER, to=DORA, external=True,
                      data=encrypted(dec_rig.work, DORA, dec_rig.keys[which], subject, ["-aes256"]))
    d = assert_decrypted_text(dec_rig, DORA, subject, "The merger closes on Friday.")
    assert header(d, "X-SMIME-Decrypted").startswith(f"yes (by test.example; identity {identity};"), header(d, "X-SMIME-Decrypted")


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


def tamper_cbc(data: str) -> str:
    """Flips the top bit of the last byte of the next-to-last ciphertext block: in CBC that byte
    is XORed into the last plaintext byte, the padding length, which then exceeds the block size
    (at most 16 becomes at least 0x81), so decryption fails every time, not 255 times in 256."""
    head, body = data.split("\n\n", 1)
    der = bytearray(base64.b64decode(body))
    der[-17] ^= 0x80
    return head + "\n\n" + base64.encodebytes(bytes(der)).decode()


def truncate(data: str) -> str:
    head, body = data.split("\n\n", 1)
    der = base64.b64decode(body)
    return head + "\n\n" + base64.encodebytes(der[: len(der) // 2]).decode()


def test_failures_are_delivered_as_they_came_with_the_cause(dec_rig):
    cases = {
        "no_key": encrypted(dec_rig.work, DORA, dec_rig.keys["stranger"], "wrong key", ["-aes256"]),
        "decrypt_failed": tamper_cbc(encrypted(dec_rig.work, DORA, dec_rig.keys[DORA], "tampered cbc", ["-aes256"])),
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


def enveloped_message(rcpt: str, subject: str, der: bytes, from_: str = PARTNER) -> str:
    """A message whose root is `der` (EnvelopedData) as application/pkcs7-mime."""
    return (f"From: {from_}\nTo: {rcpt}\nSubject: {subject}\nMessage-ID: <{subject.replace(' ', '-')}@outside.example>\n"
            "MIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\n"
            "Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=smime.p7m\n\n"
            + base64.encodebytes(der).decode())


def dora_certificate(r) -> Path:
    cert = r.work / "dora.crt"
    cert.write_bytes(run(["openssl", "x509", "-in", str(r.keys[DORA])]).stdout)
    return cert


def assert_decrypted_text(r, rcpt: str, subject: str, text: str) -> rigmod.Delivered:
    d = delivered_with(r, rcpt, subject)
    msg = d.parsed()
    assert msg.get_content_type() == "text/plain", msg.get("Content-Type")
    assert msg.get_payload().strip() == text
    value = header(d, "X-SMIME-Decrypted")
    assert value and value.startswith("yes (by test.example; identity "), value
    return d


def test_nss_cmsutil_envelope_arrives_decrypted(dec_rig, tmp_path):
    """Thunderbird's library encrypts (AES-128-CBC, RSA PKCS#1 v1.5, indefinite-length BER)."""
    db = tmp_path / "nss"
    db.mkdir()
    run(["certutil", "-N", "--empty-password", "-d", f"sql:{db}"])
    run(["certutil", "-A", "-n", "root", "-t", "C,C,C", "-i", str(dec_rig.pki_dir / "root.pem"), "-d", f"sql:{db}"])
    run(["certutil", "-A", "-n", "issuing", "-t", ",,", "-i", str(dec_rig.pki_dir / "intermediate.pem"), "-d", f"sql:{db}"])
    run(["certutil", "-A", "-n", "dora", "-t", ",,", "-i", str(dora_certificate(dec_rig)), "-d", f"sql:{db}"])
    (tmp_path / "in.txt").write_text(TEXT)
    run(["cmsutil", "-E", "-r", DORA, "-i", str(tmp_path / "in.txt"), "-d", f"sql:{db}", "-o", str(tmp_path / "nss.der")])
    subject = "encrypted by nss cmsutil"
    dec_rig.send_smtp(from_=PARTNER, to=DORA, data=enveloped_message(DORA, subject, (tmp_path / "nss.der").read_bytes()),
                      external=True)
    assert_decrypted_text(dec_rig, DORA, subject, "The merger closes on Friday.")


def test_gpgsm_envelope_arrives_decrypted(dec_rig, tmp_path):
    """GnuPG's S/MIME tool encrypts to dora's certificate (chain trusted in a throw-away home)."""
    with rigmod.gnupg_home() as (home, env):
        (home / "gpgsm.conf").write_text("disable-crl-checks\n")
        run(["gpgsm", "--batch", "--import", str(dec_rig.pki_dir / "root.pem"), str(dec_rig.pki_dir / "intermediate.pem"),
             str(dora_certificate(dec_rig))], env=env)
        listing = run(["gpgsm", "--with-colons", "--list-keys", "smime-milter Test Root CA"], env=env).stdout.decode()
        root_fpr = next(l.split(":")[9] for l in listing.splitlines() if l.startswith("fpr:"))
        (home / "trustlist.txt").write_text(f"{root_fpr} S relax\n")
        (tmp_path / "in.txt").write_text(TEXT)
        run(["gpgsm", "--batch", "--output", str(tmp_path / "gpgsm.der"), "-r", DORA, "--encrypt", str(tmp_path / "in.txt")],
            env=env)
    subject = "encrypted by gpgsm"
    dec_rig.send_smtp(from_=PARTNER, to=DORA, data=enveloped_message(DORA, subject, (tmp_path / "gpgsm.der").read_bytes()),
                      external=True)
    assert_decrypted_text(dec_rig, DORA, subject, "The merger closes on Friday.")


# Corpus messages whose signed root holds the envelope: (inner result, outer result). The
# corpus says each outer signature is invalid (signed over LF line ends, or copied from another
# message: smime-manual/readme.txt) and the opaque ones valid; the inner layer is what is inside.
SIGNED_LAYER = {
    "alice.env.dsig.SHA1.multipart.eml": ("none", "fail"), "alice.env.dsig.SHA256.multipart.eml": ("none", "fail"),
    "alice.env.dsig.SHA384.multipart.eml": ("none", "fail"), "alice.env.dsig.SHA512.multipart.eml": ("none", "fail"),
    "alice.env.sig.SHA1.opaque.eml": ("none", "policy"), "alice.env.sig.SHA256.opaque.eml": ("none", "pass"),
    "alice.env.sig.SHA384.opaque.eml": ("none", "pass"), "alice.env.sig.SHA512.opaque.eml": ("none", "pass"),
    "alice.dsig.SHA256.multipart.env.dsig.eml": ("pass", "fail"),
    "outer-smime-bad-sig-inner-smime-enc.eml": ("none", "fail"),
    "outer-smime-bad-sig-inner-smime-enc-sig.eml": ("pass", "fail"),
}
# Corpus messages with an encrypted part among other parts: never opened (EFAIL).
ENCRYPTED_PART_AMONG_OTHERS = ["comm-central/mailnews/test/data/smime-manual/alice.env.mixed.dsig.SHA256.multipart.eml",
                               "comm-central/mailnews/test/data/smime-manual/outer-pgp-sig-inner-smime-enc.eml",
                               "comm-central/mail/test/browser/smime/data/multipart-alternative.eml"]


def corpus_rows() -> list[tuple[str, str, str, str | None]]:
    """(file, recipient key, inner result, outer result) of each corpus message encrypted to a key
    the corpus gives whose root is the envelope, or a signed root over it."""
    rows, seen = [], set()
    if not (CORPUS / "MANIFEST.tsv").is_file():
        return [("MANIFEST.tsv missing", "", "", None)]
    for line in (CORPUS / "MANIFEST.tsv").read_text().splitlines()[1:]:
        cols = line.split("\t")
        file, kind, expected, digest, result = cols[0], cols[1], cols[2], cols[5], cols[7]
        name = file.rsplit("/", 1)[-1]
        if file in seen:
            continue
        seen.add(file)
        if name in SIGNED_LAYER:
            rows.append((file, "Bob.crt", *SIGNED_LAYER[name]))
            continue
        key = next((k for k in CORPUS_KEYS if f"dec:{k}" in result or f"decrypt {k}" in result), None)
        if key is None or not kind.startswith("enveloped>"):
            continue
        inner = kind.split(">", 1)[1]
        want = "none" if inner == "plain" else ("policy" if digest == "sha1" else "pass" if expected == "valid" else expected)
        rows.append((file, key, want, None))
    return rows


@pytest.mark.parametrize("file,key,want,outer", corpus_rows(), ids=[r[0].rsplit("/", 1)[-1] for r in corpus_rows()])
def test_corpus_envelopes_decrypt_through_postfix(dec_rig, tmp_path, file, key, want, outer):
    """Each enveloped corpus message sent to the address of its key: delivered decrypted to what
    `openssl cms -decrypt` gives, the inner signature with the corpus's expected result."""
    raw = (CORPUS / file).read_bytes()
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1]   # an mbox separator line
    source, rcpt = CORPUS_KEYS[key]
    keys = CORPUS / "keys" / source
    key_file = keys / ("key.pem" if key == "cert.pem" else key[:-4] + ".key")
    subject = f"corpus {file.rsplit('/', 1)[-1]}"
    data = replace_fields(raw, {"Subject": subject, "To": rcpt,
                                "Message-ID": f"<{hashlib.sha256(file.encode()).hexdigest()[:16]}@corpus.example>"})
    sender = email.utils.parseaddr(email.message_from_bytes(raw).get("From", PARTNER))[1] or PARTNER
    dec_rig.send_smtp(from_=sender, to=rcpt, data=data, external=True)
    d = delivered_with(dec_rig, rcpt, subject)
    envelope = raw
    if outer is not None and email.message_from_bytes(raw).get_content_type() == "multipart/signed":
        envelope = email.message_from_bytes(raw).get_payload(0).as_bytes()
    elif outer is not None:
        (tmp_path / "outer.eml").write_bytes(raw)
        envelope = run(["openssl", "cms", "-verify", "-noverify", "-in", str(tmp_path / "outer.eml")]).stdout
    (tmp_path / "m.eml").write_bytes(envelope)
    value = header(d, "X-SMIME-Decrypted")
    if b"des-ede3-cbc" in run(["openssl", "cms", "-cmsout", "-print", "-in", str(tmp_path / "m.eml")]).stdout:
        # 3DES is refused by default (DecryptionWeakCiphers): delivered as it came, with the cause.
        assert value and value.startswith("failed (cause=refused_cipher;"), value
        assert d.parsed().get_content_type() == "application/pkcs7-mime"
        return
    assert value and value.startswith("yes ("), (value, dec_rig.milter.log()[-2000:])
    # openssl's plaintext of the envelope is what was delivered (body, line ends aside).
    plain = run(["openssl", "cms", "-decrypt", "-binary", "-in", str(tmp_path / "m.eml"), "-inkey", str(key_file)]).stdout
    plain = plain.replace(b"\r\n", b"\n")
    # OpenSSL's interop messages hold bare text, no MIME header: all of it is the body.
    expected_body = plain.split(b"\n\n", 1)[1] if re.match(rb"[!-9;-~]+:", plain) else plain
    assert d.body.replace(b"\r\n", b"\n").strip() == expected_body.strip()
    results = [r.strip() for r in header(d, "Authentication-Results").split(";")[1:]]
    assert results[0].startswith(f"smime={want}"), results
    if outer is not None:
        # The outer signature over the ciphertext, reported apart, never as the message's result.
        assert len(results) == 2 and results[1].startswith(f"smime={outer} (signature over the encrypted message"), results
    else:
        assert len(results) == 1, results


@pytest.mark.parametrize("file", ENCRYPTED_PART_AMONG_OTHERS, ids=[f.rsplit("/", 1)[-1] for f in ENCRYPTED_PART_AMONG_OTHERS])
def test_corpus_encrypted_parts_among_others_stay_encrypted(dec_rig, file):
    """EFAIL: an envelope beside parts the sender chose is delivered as it came, for Bob too."""
    raw = (CORPUS / file).read_bytes()
    subject = f"efail {file.rsplit('/', 1)[-1]}"
    data = replace_fields(raw, {"Subject": subject, "To": "Bob@example.com",
                                "Message-ID": f"<{hashlib.sha256(file.encode()).hexdigest()[:16]}@corpus.example>"})
    dec_rig.send_smtp(from_="alice@example.com", to="Bob@example.com", data=data, external=True)
    d = delivered_with(dec_rig, "Bob@example.com", subject)
    assert header(d, "X-SMIME-Decrypted") is None
    assert d.body.replace(b"\r\n", b"\n").strip() == data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1].strip()


def replace_fields(raw: bytes, fields: dict[str, str]) -> bytes:
    """`raw` with the named header fields (and their continuation lines) replaced; the body and
    every other byte as they were, so that signatures over it still verify."""
    nl = b"\r\n" if raw.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
    sep = nl + nl
    head, body = raw.split(sep, 1)
    kept, skipping = [], False
    names = {n.lower().encode() for n in fields}
    for line in head.split(nl):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = line.split(b":", 1)[0].strip().lower() in names
        if not skipping:
            kept.append(line)
    new = [f"{k}: {v}".encode() for k, v in fields.items()]
    return nl.join(new + kept) + sep + body


def openssl_sign(work: Path, content: bytes, signer: Path, intermediate: Path, *, detached: bool) -> bytes:
    (work / "to-sign").write_bytes(content)
    cmd = ["openssl", "cms", "-sign", "-in", str(work / "to-sign"), "-signer", str(signer), "-md", "sha256",
           "-certfile", str(intermediate), "-binary"]
    if not detached:
        cmd.append("-nodetach")
    return run(cmd).stdout


def test_sign_encrypt_sign_is_opened_to_the_inner_signature(dec_rig, tmp_path):
    """RFC 2634's triple wrap, made by openssl: alice signs, encrypts to dora, signs again."""
    alice = dec_rig.pki_dir / "certs" / "alice.pem"
    inter = dec_rig.pki_dir / "intermediate.pem"
    inner = openssl_sign(tmp_path, TEXT.replace("\n", "\r\n").encode(), alice, inter, detached=False)
    inner_entity = b"\r\n".join(l for l in inner.replace(b"\r\n", b"\n").split(b"\n") if not l.startswith(b"MIME-Version"))
    (tmp_path / "inner.eml").write_bytes(inner_entity)
    enveloped = run(["openssl", "cms", "-encrypt", "-in", str(tmp_path / "inner.eml"), "-recip", str(dora_certificate(dec_rig)),
                     "-aes256", "-binary"]).stdout
    envelope_entity = b"\r\n".join(l for l in enveloped.replace(b"\r\n", b"\n").split(b"\n") if not l.startswith(b"MIME-Version"))
    outer = openssl_sign(tmp_path, envelope_entity, alice, inter, detached=False)
    subject = "triple wrapped"
    data = (f"From: alice@example.com\nTo: {DORA}\nSubject: {subject}\nMessage-ID: <triple@example.com>\n").encode() \
        + outer.replace(b"\r\n", b"\n")
    dec_rig.send_smtp(from_="alice@example.com", to=DORA, data=data, external=True)
    d = delivered_with(dec_rig, DORA, subject)
    assert header(d, "X-SMIME-Decrypted").startswith("yes ("), dec_rig.milter.log()[-1500:]
    assert d.parsed().get_content_type() == "application/pkcs7-mime"
    assert "signed-data" in d.parsed()["Content-Type"]
    results = [r.strip() for r in header(d, "Authentication-Results").split(";")[1:]]
    assert results[0].startswith("smime=pass body.smime-identifier=alice@example.com"), results
    assert results[1].startswith("smime=pass (signature over the encrypted message, removed when decrypted)"), results
    assert "outer_signature=pass" in dec_rig.milter.log()
    # What is delivered is alice's inner signed message, and openssl verifies it.
    (tmp_path / "delivered.eml").write_bytes(d.message)
    ok = run(["openssl", "cms", "-verify", "-in", str(tmp_path / "delivered.eml"), "-CAfile", str(dec_rig.trust_anchor),
              "-purpose", "any"], check=False)
    assert ok.returncode == 0, ok.stderr.decode()
    assert ok.stdout.replace(b"\r\n", b"\n").endswith(b"The merger closes on Friday.\n")


def test_decryption_metrics(dec_rig):
    """smime_milter_decryption_total counts each outcome once: one decrypted, one failed (no key)."""
    import urllib.request

    def metric(result: str, cause: str = "") -> int:
        with urllib.request.urlopen(f"http://{rigmod.INTERNAL_ADDR}:{dec_rig.metrics_port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        for line in text.splitlines():
            if line.startswith("smime_milter_decryption_total{") and f'result="{result}"' in line and f'cause="{cause}"' in line:
                return int(float(line.rsplit(" ", 1)[1]))
        return 0
    before = (metric("decrypted"), metric("failed", "no_key"), metric("kept"))
    dec_rig.send_smtp(from_=PARTNER, to=DORA, external=True,
                      data=encrypted(dec_rig.work, DORA, dec_rig.keys[DORA], "metrics decrypted", ["-aes256"]))
    delivered_with(dec_rig, DORA, "metrics decrypted")
    dec_rig.send_smtp(from_=PARTNER, to=DORA, external=True,
                      data=encrypted(dec_rig.work, DORA, dec_rig.keys["stranger"], "metrics no key", ["-aes256"]))
    delivered_with(dec_rig, DORA, "metrics no key")
    dec_rig.send_smtp(from_=PARTNER, to="keeper@sink.test", external=True,
                      data=encrypted(dec_rig.work, "keeper@sink.test", dec_rig.keys[DORA], "metrics kept", ["-aes256"]))
    delivered_with(dec_rig, "keeper@sink.test", "metrics kept")
    after = (metric("decrypted"), metric("failed", "no_key"), metric("kept"))
    assert tuple(a - b for a, b in zip(after, before)) == (1, 1, 1), (before, after)
