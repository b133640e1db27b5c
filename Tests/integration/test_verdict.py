# SPDX-License-Identifier: Apache-2.0
"""The message-level verdict behind a real Postfix: spoofed structures built from one genuine
signed mail of alice's never get smime=pass or the pass tag, `smime-milter verify` prints what
the milter wrote for each, the genuine mail still passes, and RFC 9788 protected headers are
compared with the outer ones.

The shapes are the published attacks on mail signatures ("Johnny, You Are Fired!", USENIX
Security 2019: partial signing and wrapping; "Composition Kills", USENIX Security 2020:
ambiguous From fields). Signed parts are made with `openssl cms -sign` and the test PKI.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import rig as rigmod
from rig import crlf
from test_postfix_verify import (  # noqa: F401 (verify_rig is a fixture)
    ALICE, FAIL_TAG, PASS_TAG, send_external, smime_result, subject, the_result, verify_rig)

DATE = "Mon, 23 Nov 2026 10:00:00 +0000"
TEXT = "Content-Type: text/plain; charset=us-ascii\n\nThe figures are 42.\n-- \nAlice\n"
ATTACKER_TEXT = "Content-Type: text/plain; charset=us-ascii\n\nOur bank account changed, pay to DE00 0000.\n"
ATTACKER_HTML = "Content-Type: text/html; charset=us-ascii\n\n<p>Our bank account changed, pay to DE00 0000.</p>\n"


def head(rcpt: str, sender: str = f"Alice <{ALICE}>", subject: str = "Quarterly figures", extra: str = "") -> str:
    return (f"{extra}From: {sender}\nTo: {rcpt}\nSubject: {subject}\nDate: {DATE}\n"
            f"Message-ID: <{rcpt.split('@')[0]}@example.com>\nMIME-Version: 1.0\n")


def signed_part(rig: rigmod.Rig, workdir: Path, entity: str = TEXT, signers: tuple[str, ...] = ("certs/alice.pem",)) -> str:
    """A multipart/signed part (Content-Type, blank line, body) by `signers` (openssl cms -sign)."""
    pki = rig.pki_dir
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / f"entity-{abs(hash((entity, signers)))}.txt"
    source.write_bytes(crlf(entity))
    cmd = ["openssl", "cms", "-sign", "-in", str(source), "-md", "sha256", "-certfile", str(pki / "intermediate.pem")]
    for signer in signers:
        cmd += ["-signer", str(pki / signer)]
    out = rigmod.run(cmd).stdout.decode().replace("\r\n", "\n")
    # openssl's own MIME-Version line goes (the part's header is Content-Type only); the
    # signed content below is left exactly as signed.
    if out.startswith("MIME-Version:"):
        out = out.split("\n", 1)[1]
    return out.rstrip("\n") + "\n"


def zero_signers(rig: rigmod.Rig) -> str:
    """multipart/signed whose signature part is certs-only: a SignedData without a signer."""
    out = rigmod.run(["openssl", "crl2pkcs7", "-nocrl", "-certfile", str(rig.pki_dir / "certs" / "alice.pem")]).stdout.decode()
    b64 = "\n".join(line for line in out.splitlines() if not line.startswith("-----"))
    return ('Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="zs"\n\n'
            f"--zs\n{TEXT}\n--zs\nContent-Type: application/pkcs7-signature; name=smime.p7s\n"
            f"Content-Transfer-Encoding: base64\n\n{b64}\n--zs--\n")


def multipart(kind: str, *parts: str) -> str:
    return f'Content-Type: multipart/{kind}; boundary="outer-b"\n\n' + "".join(
        f"--outer-b\n{p.rstrip(chr(10))}\n" for p in parts) + "--outer-b--\n"


# (name, builder(rig, rcpt, workdir) -> message text, expected result, words in the comment)
SHAPES = [
    ("mixed-attacker-text", lambda r, to, w: head(to) + multipart("mixed", ATTACKER_TEXT, signed_part(r, w)),
     "policy", "only part 2 is signed"),
    ("alternative-unsigned-html", lambda r, to, w: head(to) + multipart("alternative", signed_part(r, w), ATTACKER_HTML),
     "policy", "as an alternative to it"),
    ("display-name-address", lambda r, to, w: head(to, sender=f'"ceo@example.com" <{ALICE}>') + signed_part(r, w),
     "policy", "display name shows another address"),
    ("two-from-fields", lambda r, to, w: head(to, extra="From: ceo@example.com\n") + signed_part(r, w),
     "policy", "2 From fields"),
    ("from-two-addresses", lambda r, to, w: head(to, sender=f"{ALICE}, ceo@example.com") + signed_part(r, w),
     "policy", "does not name ceo@example.com"),
    ("inside-rfc822-next-to-text", lambda r, to, w: head(to) + multipart(
        "mixed", ATTACKER_TEXT, "Content-Type: message/rfc822\n\n" + head(to) + signed_part(r, w)),
     "none", ""),
    ("after-unsigned-html", lambda r, to, w: head(to) + multipart("mixed", ATTACKER_HTML, signed_part(r, w)),
     "policy", "before it"),
    ("two-signers-one-bad", lambda r, to, w: head(to) + signed_part(r, w, signers=("certs/alice.pem", "other/mallory.pem")),
     "fail", "untrusted"),
    ("zero-signers", lambda r, to, w: head(to) + zero_signers(r), "permerror", "no signers"),
    ("sender-not-from", lambda r, to, w: head(to, sender="ceo@example.com", extra=f"Sender: {ALICE}\n") + signed_part(r, w),
     "policy", "is not the From address ceo@example.com"),
]


def verify_line(rig: rigmod.Rig, milter_bin: Path, message: bytes, path: Path) -> tuple[int, str]:
    """What `smime-milter verify --config` (the milter's own configuration) prints for a file."""
    path.write_bytes(message)
    out = subprocess.run([str(milter_bin), "verify", "--config", str(rig.milter.config_path), str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode in (0, 1), out.stdout + out.stderr
    return out.returncode, out.stdout.strip().split(": ", 1)[1]


def header_result(delivered: bytes) -> str:
    return " ".join(the_result(delivered).split(";", 1)[1].split())


@pytest.mark.parametrize("name,build,expected,words", SHAPES, ids=[s[0] for s in SHAPES])
def test_spoofed_structure_never_passes(verify_rig, rcpt, tmp_path, milter_bin, name, build, expected, words):
    sent = crlf(build(verify_rig, rcpt, tmp_path))
    d = send_external(verify_rig, rcpt, sent)
    ar = the_result(d.message)
    assert smime_result(ar) == expected, ar
    assert "smime=pass" not in ar
    assert words in " ".join(ar.split()), ar
    assert PASS_TAG not in subject(d.message), subject(d.message)
    status, printed = verify_line(verify_rig, milter_bin, sent, tmp_path / f"{name}.eml")
    assert printed == header_result(d.message), (printed, ar)
    assert status == 1


def test_genuine_mail_still_passes(verify_rig, rcpt, tmp_path, milter_bin):
    sent = crlf(head(rcpt) + signed_part(verify_rig, tmp_path))
    d = send_external(verify_rig, rcpt, sent)
    assert smime_result(the_result(d.message)) == "pass"
    assert subject(d.message) == f"{PASS_TAG} Quarterly figures"
    status, printed = verify_line(verify_rig, milter_bin, sent, tmp_path / "genuine.eml")
    assert (status, printed) == (0, header_result(d.message))
    assert rigmod.openssl_verify(d.message, verify_rig.trust_anchor, tmp_path).ok


def test_partial_signature_from_a_required_domain_is_a_missing_signature(verify_rig, rcpt, tmp_path):
    """@bank.example is in RequireSignature: a genuine signed part wrapped with an attacker's
    text under its From gets OnMissingSignature (tag: the fail tag), and a forged pass tag goes.
    (The Swift matrix covers a partial signature by the required sender itself.)"""
    bank = "alerts@bank.example"
    sent = crlf(head(rcpt, sender=bank, subject=f"{PASS_TAG} account change")
                + multipart("mixed", ATTACKER_TEXT, signed_part(verify_rig, tmp_path)))
    d = send_external(verify_rig, rcpt, sent, sender=bank)
    assert smime_result(the_result(d.message)) == "policy"
    assert subject(d.message) == f"{FAIL_TAG} account change"


# RFC 9788 header protection -----------------------------------------------------------------

def protected(rig: rigmod.Rig, rcpt: str, workdir: Path, *, legacy: bool, outer_from: str = f"Alice <{ALICE}>",
              outer_subject: str = "Quarterly figures") -> bytes:
    inner = f"From: Alice <{ALICE}>\nTo: {rcpt}\nSubject: Quarterly figures\nDate: {DATE}\n"
    entity = (f"Content-Type: message/rfc822; forwarded=no\n\n{inner}MIME-Version: 1.0\n{TEXT}" if legacy
              else f'Content-Type: text/plain; charset=us-ascii; hp="clear"\n{inner}\nThe figures are 42.\n')
    return crlf(head(rcpt, sender=outer_from, subject=outer_subject) + signed_part(rig, workdir, entity))


@pytest.mark.parametrize("legacy", [False, True], ids=["hp-clear", "rfc822-wrapper"])
def test_protected_headers_matching_pass(verify_rig, rcpt, tmp_path, legacy):
    d = send_external(verify_rig, rcpt, protected(verify_rig, rcpt, tmp_path, legacy=legacy))
    ar = the_result(d.message)
    assert smime_result(ar) == "pass" and "(" not in ar, ar
    assert subject(d.message) == f"{PASS_TAG} Quarterly figures"


@pytest.mark.parametrize("legacy", [False, True], ids=["hp-clear", "rfc822-wrapper"])
def test_protected_from_changed_outside_is_policy(verify_rig, rcpt, tmp_path, legacy, milter_bin):
    sent = protected(verify_rig, rcpt, tmp_path, legacy=legacy, outer_from="ceo@example.com")
    d = send_external(verify_rig, rcpt, sent)
    ar = the_result(d.message)
    assert smime_result(ar) == "policy", ar
    assert "differs from the signed From" in " ".join(ar.split()), ar
    assert PASS_TAG not in subject(d.message)
    assert verify_line(verify_rig, milter_bin, sent, tmp_path / "from.eml")[1] == header_result(d.message)


@pytest.mark.parametrize("legacy", [False, True], ids=["hp-clear", "rfc822-wrapper"])
def test_protected_subject_changed_outside_is_reported_and_tagged_on_the_signed_one(verify_rig, rcpt, tmp_path, legacy):
    sent = protected(verify_rig, rcpt, tmp_path, legacy=legacy, outer_subject="URGENT: pay now")
    d = send_external(verify_rig, rcpt, sent)
    ar = " ".join(the_result(d.message).split())
    assert "smime=pass (header protection: the outer Subject differs from the signed one)" in ar, ar
    assert subject(d.message) == f"{PASS_TAG} Quarterly figures"
    # The signed entity was not edited: the recipient can still verify it.
    assert rigmod.openssl_verify(d.message, verify_rig.trust_anchor, tmp_path).ok


def test_outbound_header_protection_verifies_everywhere_and_reads_back(verify_rig, rcpt, tmp_path, milter_bin):
    """HeaderProtection yes: mail from an internal client is signed with hp="clear"; OpenSSL, NSS
    and gpgsm accept the signature, and `verify` finds the protected fields (a pass)."""
    import dataclasses
    from test_postfix_verify import verify_settings
    settings = verify_settings(verify_rig)
    verify_rig.milter.restart(dataclasses.replace(settings, extra=settings.extra + "HeaderProtection yes\n"))
    try:
        sent = crlf(head(rcpt, subject="Protected figures") + TEXT)
        verify_rig.send_smtp(from_=ALICE, to=rcpt, data=sent)
        [d] = verify_rig.sink.wait_for(rcpt)
    finally:
        verify_rig.milter.restart(settings)
    v = rigmod.openssl_verify(d.message, verify_rig.trust_anchor, tmp_path)
    assert v.ok, v.output
    content, _ = rigmod.signature_parts(d.message)
    assert content is not None
    first = content.split(b"\r\n", 1)[0]
    assert first.startswith(b"Content-Type: text/plain") and first.endswith(b'; hp="clear"'), content[:200]
    assert b"\r\nSubject: Protected figures\r\n" in content and f"\r\nFrom: Alice <{ALICE}>\r\n".encode() in content
    nss_ok, nss_log = rigmod.nss_verify(d.message, verify_rig.trust_anchor, tmp_path)
    assert nss_ok, nss_log
    gpgsm_ok, gpgsm_log = rigmod.gpgsm_verify(d.message, verify_rig.trust_anchor, tmp_path)
    assert gpgsm_ok, gpgsm_log
    status, printed = verify_line(verify_rig, milter_bin, d.message, tmp_path / "protected.eml")
    assert status == 0 and printed.startswith(f"smime=pass body.smime-identifier={ALICE}"), printed


def test_outbound_header_protection_from_the_spool_file(verify_rig, rcpt, tmp_path):
    """A body over SpoolThreshold is signed from the spool file (the streaming path); with
    HeaderProtection yes its signed entity still carries the protected fields and hp="clear"."""
    import dataclasses
    from test_postfix_verify import verify_settings
    settings = verify_settings(verify_rig)
    spool = verify_rig.milter.directory / "spool"
    verify_rig.milter.restart(dataclasses.replace(
        settings, extra=settings.extra + f"HeaderProtection yes\nSpoolThreshold 64K\nSpoolDirectory {spool}\n"))
    try:
        line = "the quick brown fox jumps over the lazy dog\n"   # 7-bit, no trailing blank: kept verbatim
        body = line * (200_000 // len(line))
        sent = crlf(head(rcpt, subject="Large protected") + "Content-Type: text/plain; charset=us-ascii\n\n" + body)
        verify_rig.send_smtp(from_=ALICE, to=rcpt, data=sent)
        [d] = verify_rig.sink.wait_for(rcpt)
    finally:
        verify_rig.milter.restart(settings)
    assert spool.is_dir(), "the body went through the spool file"
    v = rigmod.openssl_verify(d.message, verify_rig.trust_anchor, tmp_path)
    assert v.ok, v.output
    content, _ = rigmod.signature_parts(d.message)
    assert content is not None and content.split(b"\r\n", 1)[0].endswith(b'; hp="clear"'), content[:200]
    assert b"\r\nSubject: Large protected\r\n" in content
    assert len(content) > 150_000
