# SPDX-License-Identifier: Apache-2.0
"""Inbound verification behind a real Postfix: what the next hop (an smtp-sink) receives.

Mail comes from the "external" client (127.0.0.2, not in InternalHosts, no SASL), so the milter
(Mode sv) verifies it instead of signing it. Signed test mail is made with `openssl cms -sign`
and the test PKI's alice (a signer we did not write); the assertions are on the delivered
copies: exactly one Authentication-Results field of ours with the RFC 7281 result, forged ones
gone, the Subject tags, and for RequireSignature senders each OnMissingSignature action
(Postfix's hold queue for quarantine, swaks seeing the 5xx for reject).

These tests need the real verifier (SMIME.MessageVerifier wired into the milter); with a build
that has no `verify` command they are skipped with a message saying so.
"""
from __future__ import annotations

import base64
import contextlib
import email.header
import json
import subprocess
import time
from pathlib import Path

import pytest

import rig as rigmod
from conftest import KEEP, _require_tools
from rig import MilterSettings, crlf, lf

ALICE = "alice@example.com"
BOB = "bob@example.com"
AUTHSERV = "test.example"          # the rig's AuthservID
BANK = "alerts@bank.example"       # listed in RequireSignature as @bank.example
PASS_TAG = "[signed]"
FAIL_TAG = "[SIGNATURE BROKEN]"
# 会議の資料 in ISO-2022-JP, as Japanese mailers write a Subject.
JAPANESE_SUBJECT = "=?ISO-2022-JP?B?" + base64.b64encode("会議の資料".encode("iso-2022-jp")).decode() + "?="


# ---------------------------------------------------------------------------------------------
# the rig: the milter in Mode sv with tags and a RequireSignature list

def verify_settings(rig: rigmod.Rig, on_missing: str = "tag") -> MilterSettings:
    required = rig.milter.directory / "require-signature"
    required.parent.mkdir(parents=True, exist_ok=True)
    required.write_text("# senders that sign everything\n@bank.example\n")
    return MilterSettings(mode="sv", extra=(
        f"TrustAnchors {rig.trust_anchor}\n"
        f"SubjectTagPass {PASS_TAG}\n"
        f"SubjectTagFail {FAIL_TAG}\n"
        f"RequireSignature {required}\n"
        f"OnMissingSignature {on_missing}\n"))


def has_verifier(binary: Path) -> bool:
    cp = subprocess.run([str(binary), "verify", "--help"], capture_output=True, timeout=30)
    return cp.returncode == 0


@pytest.fixture(scope="module")
def verify_rig(request, milter_bin) -> rigmod.Rig:
    _require_tools()
    if not has_verifier(milter_bin):
        pytest.skip(f"{milter_bin} has no verify command: the signature verifier is not built in yet")
    r = rigmod.Rig(milter_bin=milter_bin)
    r.milter_settings = verify_settings(r)
    r.start()
    request.node._rig = r
    if KEEP:
        print(f"\nrig directory kept: {r.root}")
    request.addfinalizer(lambda: r.stop(keep=KEEP))
    return r


@contextlib.contextmanager
def on_missing_signature(rig: rigmod.Rig, action: str):
    """Run the milter with another OnMissingSignature for the block, then restore `tag`."""
    rig.milter.restart(verify_settings(rig, action))
    try:
        yield
    finally:
        rig.milter.restart(verify_settings(rig, "tag"))


# ---------------------------------------------------------------------------------------------
# messages

def outer_head(rcpt: str, sender: str, subject: str, extra: str = "") -> str:
    return (f"{extra}"
            f"From: {sender}\n"
            f"To: Tom Test <{rcpt}>\n"
            f"Subject: {subject}\n"
            "Date: Mon, 23 Nov 2026 10:00:00 +0000\n"
            f"Message-ID: <{rcpt.split('@')[0]}.{int(time.time() * 1000)}@example.com>\n")


def signed_message(rig: rigmod.Rig, rcpt: str, workdir: Path, *, sender: str = f"Alice <{ALICE}>",
                   subject: str = "Quarterly figures", tamper: bool = False, extra: str = "") -> bytes:
    """A message signed by alice (openssl cms -sign, detached), from the external world."""
    pki = rig.pki_dir
    entity = crlf("Content-Type: text/plain; charset=us-ascii\n\nThe figures are 42.\n-- \nAlice\n")
    signed = rigmod.openssl_sign(entity, pki / "certs" / "alice.pem", workdir, certfile=pki / "intermediate.pem")
    if tamper:
        assert b"The figures are 42." in signed
        signed = signed.replace(b"The figures are 42.", b"The figures are 99.")
    return crlf(outer_head(rcpt, sender, subject, extra).encode()) + crlf(signed)


def unsigned_message(rcpt: str, *, sender: str, subject: str = "Your statement", extra: str = "") -> bytes:
    return crlf((outer_head(rcpt, sender, subject, extra)
                 + "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
                 + "Please log in to see your statement.\n").encode())


def send_external(rig: rigmod.Rig, rcpt: str, data: bytes, sender: str = ALICE) -> rigmod.Delivered:
    """Send from the external client with smtplib (exact bytes) and return the delivered copy."""
    rig.send_smtp(from_=sender, to=rcpt, data=data, external=True)
    [d] = rig.sink.wait_for(rcpt)
    return d


# ---------------------------------------------------------------------------------------------
# looking at delivered mail

def fields(message: bytes) -> list[tuple[str, str]]:
    """(lower-case name, unfolded value) of every top-level field, in order."""
    head = lf(message).split(b"\n\n", 1)[0].decode("utf-8", errors="replace")
    out: list[tuple[str, str]] = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
        elif ":" in line:
            name, _, value = line.partition(":")
            out.append((name.strip().lower(), value.strip()))
    return out


def our_results(message: bytes) -> list[str]:
    """The Authentication-Results values whose authserv-id is ours (case-insensitive)."""
    return [v for n, v in fields(message) if n == "authentication-results"
            and v.split(";", 1)[0].split()[0].strip('"').lower() == AUTHSERV]


def the_result(message: bytes) -> str:
    """Our one Authentication-Results value; fails unless there is exactly one, above From."""
    ours = our_results(message)
    assert len(ours) == 1, f"expected one Authentication-Results of {AUTHSERV}, got {ours}"
    names = [n for n, _ in fields(message)]
    assert names.index("authentication-results") < names.index("from"), names
    return ours[0]


def subject(message: bytes) -> str:
    return dict(fields(message))["subject"]


def smime_result(value: str) -> str:
    return value.split("smime=", 1)[1].split()[0]


# ---------------------------------------------------------------------------------------------
# signed mail

def test_correctly_signed_mail_passes_and_is_tagged(verify_rig, rcpt, tmp_path):
    sent = signed_message(verify_rig, rcpt, tmp_path)
    d = send_external(verify_rig, rcpt, sent)
    ar = the_result(d.message)
    assert ar.startswith(f"{AUTHSERV};"), ar
    assert smime_result(ar) == "pass", ar
    assert f"body.smime-identifier={ALICE}" in ar
    assert "body.smime-part=" in ar
    assert "(" not in ar, "no comment on pass"
    assert subject(d.message) == f"{PASS_TAG} Quarterly figures"
    # The milter only added header fields: the signature still verifies for the recipient.
    v = rigmod.openssl_verify(d.message, verify_rig.trust_anchor, tmp_path)
    assert v.ok, v.output


def test_japanese_encoded_word_subject_gets_tag_before_the_word(verify_rig, rcpt, tmp_path):
    sent = signed_message(verify_rig, rcpt, tmp_path, subject=JAPANESE_SUBJECT)
    d = send_external(verify_rig, rcpt, sent)
    assert smime_result(the_result(d.message)) == "pass"
    raw = subject(d.message)
    assert raw == f"{PASS_TAG} {JAPANESE_SUBJECT}", "the encoded word is kept byte for byte"
    decoded = str(email.header.make_header(email.header.decode_header(raw)))
    assert decoded == f"{PASS_TAG} 会議の資料"


def test_already_tagged_subject_is_not_tagged_twice(verify_rig, rcpt, tmp_path):
    sent = signed_message(verify_rig, rcpt, tmp_path, subject=f"{PASS_TAG} Quarterly figures")
    d = send_external(verify_rig, rcpt, sent)
    assert smime_result(the_result(d.message)) == "pass"
    assert subject(d.message) == f"{PASS_TAG} Quarterly figures"


def test_tampered_mail_fails_with_reason(verify_rig, rcpt, tmp_path):
    sent = signed_message(verify_rig, rcpt, tmp_path, tamper=True)
    d = send_external(verify_rig, rcpt, sent)
    ar = the_result(d.message)
    assert smime_result(ar) == "fail", ar
    assert "smime=fail (" in ar, "a comment says why"
    comment = ar.split("smime=fail (", 1)[1]
    assert ")" in comment
    assert subject(d.message) == f"{FAIL_TAG} Quarterly figures"
    assert not rigmod.openssl_verify(d.message, verify_rig.trust_anchor, tmp_path).ok


def test_verify_command_prints_what_the_milter_writes(verify_rig, rcpt, tmp_path, milter_bin):
    """`smime-milter verify` on the message as sent prints the same result and properties as
    the Authentication-Results header the milter wrote on the delivered copy."""
    for tamper, expected_status in ((False, 0), (True, 1)):
        to = ("tampered-" if tamper else "intact-") + rcpt   # one delivery per address
        sent = signed_message(verify_rig, to, tmp_path, tamper=tamper)
        d = send_external(verify_rig, to, sent)
        header = " ".join(the_result(d.message).split(";", 1)[1].split())
        path = tmp_path / f"sent-{tamper}.eml"
        path.write_bytes(sent)
        out = subprocess.run([str(milter_bin), "verify", "--trust", str(verify_rig.trust_anchor), str(path)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == expected_status, out.stdout + out.stderr
        printed = out.stdout.strip().split(": ", 1)[1]
        assert printed == header, (printed, header)


def test_signed_by_another_address_than_from_does_not_pass(verify_rig, rcpt, tmp_path):
    # A valid signature by alice on mail claiming to be from bob.
    sent = signed_message(verify_rig, rcpt, tmp_path, sender=f"Bob <{BOB}>")
    d = send_external(verify_rig, rcpt, sent, sender=BOB)
    ar = the_result(d.message)
    assert smime_result(ar) in ("policy", "fail"), ar
    assert "(" in ar, "a comment says why"
    assert f"body.smime-identifier={ALICE}" in ar, "the identifier is the signer's address"
    assert subject(d.message) == f"{FAIL_TAG} Quarterly figures"


def test_forged_pass_tag_on_unsigned_mail_is_removed(verify_rig, rcpt):
    sent = unsigned_message(rcpt, sender="someone@elsewhere.example", subject=f"{PASS_TAG} Pay this invoice")
    d = send_external(verify_rig, rcpt, sent, sender="someone@elsewhere.example")
    assert smime_result(the_result(d.message)) == "none"
    assert subject(d.message) == "Pay this invoice"


# ---------------------------------------------------------------------------------------------
# forged Authentication-Results

def test_forged_authentication_results_are_removed_others_kept(verify_rig, rcpt):
    forged = (f"Authentication-Results: {AUTHSERV}; smime=pass body.smime-identifier=ceo@example.com\n"
              "Authentication-Results: relay.example.org; spf=pass smtp.mailfrom=elsewhere.example\n"
              f"Authentication-Results: (forged)\n\t{AUTHSERV.upper()} 1; dkim=pass header.d=example.com\n")
    sent = unsigned_message(rcpt, sender="someone@elsewhere.example", extra=forged)
    d = send_external(verify_rig, rcpt, sent, sender="someone@elsewhere.example")
    ar = the_result(d.message)
    assert smime_result(ar) == "none"
    assert ar.replace(" ", "") == f"{AUTHSERV};smime=none", ar
    text = d.message.decode(errors="replace")
    assert "ceo@example.com" not in text
    assert "(forged)" not in text
    all_results = [v for n, v in fields(d.message) if n == "authentication-results"]
    assert "relay.example.org; spf=pass smtp.mailfrom=elsewhere.example" in all_results
    assert len(all_results) == 2
    assert subject(d.message) == "Your statement", "no SubjectTagNone configured"


# ---------------------------------------------------------------------------------------------
# RequireSignature: unsigned mail from @bank.example, each OnMissingSignature action

def test_required_sender_unsigned_is_tagged(verify_rig, rcpt):
    d = send_external(verify_rig, rcpt, unsigned_message(rcpt, sender=f"Bank <{BANK}>"), sender=BANK)
    assert smime_result(the_result(d.message)) == "none"
    assert subject(d.message) == f"{FAIL_TAG} Your statement"
    # The same unsigned mail from a sender not on the list is not tagged.
    other = rcpt.replace("@", "-other@")
    d2 = send_external(verify_rig, other, unsigned_message(other, sender="news@shop.example"),
                       sender="news@shop.example")
    assert smime_result(the_result(d2.message)) == "none"
    assert subject(d2.message) == "Your statement"


def test_required_sender_signed_correctly_is_untouched_by_the_rule(verify_rig, rcpt, tmp_path):
    # Alice is not on the list; a passing signature is never subject to the rule anyway.
    with on_missing_signature(verify_rig, "reject"):
        d = send_external(verify_rig, rcpt, signed_message(verify_rig, rcpt, tmp_path))
    assert smime_result(the_result(d.message)) == "pass"


def hold_queue(rig: rigmod.Rig) -> list[dict]:
    cp = rigmod.run(["postqueue", "-c", str(rig.postfix.config_dir), "-j"])
    entries = [json.loads(line) for line in cp.stdout.decode().splitlines() if line.strip()]
    return [e for e in entries if e.get("queue_name") == "hold"]


def test_required_sender_unsigned_is_quarantined(verify_rig, rcpt):
    with on_missing_signature(verify_rig, "quarantine"):
        verify_rig.send_smtp(from_=BANK, to=rcpt, data=unsigned_message(rcpt, sender=BANK), external=True)

        def held():
            return [e for e in hold_queue(verify_rig)
                    if any(r.get("address") == rcpt for r in e.get("recipients", []))]
        entries = rigmod.wait_until(held, 30, "the message in the hold queue")
    [entry] = entries
    queue_id = entry["queue_id"]
    try:
        assert "milter-hold" in verify_rig.postfix.log_text()
        head = rigmod.run(["postcat", "-c", str(verify_rig.postfix.config_dir), "-h", "-q", queue_id]).stdout
        held_fields = fields(head + b"\n\n")
        ours = [v for n, v in held_fields if n == "authentication-results" and v.lower().startswith(AUTHSERV)]
        assert len(ours) == 1 and "smime=none" in ours[0], held_fields
        # Nothing reached the next hop.
        time.sleep(1)
        assert verify_rig.sink.for_rcpt(rcpt) == []
    finally:
        rigmod.run(["postsuper", "-c", str(verify_rig.postfix.config_dir), "-d", queue_id, "hold"], check=False)


def test_required_sender_unsigned_is_rejected(verify_rig, rcpt):
    with on_missing_signature(verify_rig, "reject"):
        res = verify_rig.send_swaks(from_=BANK, to=rcpt, data=unsigned_message(rcpt, sender=BANK), external=True)
    assert not res.accepted, res.transcript
    assert "550 5.7.1" in res.transcript
    assert "S/MIME signature required" in res.transcript
    assert "bank.example" in res.transcript
    time.sleep(1)
    assert verify_rig.sink.for_rcpt(rcpt) == []


def test_required_sender_tampered_is_rejected(verify_rig, rcpt, tmp_path):
    sent = signed_message(verify_rig, rcpt, tmp_path, sender=BANK, tamper=True)
    with on_missing_signature(verify_rig, "reject"):
        res = verify_rig.send_swaks(from_=BANK, to=rcpt, data=sent, external=True)
    assert not res.accepted, res.transcript
    assert "550 5.7.1" in res.transcript
    assert "smime=fail" in res.transcript


def test_required_sender_unsigned_is_accepted(verify_rig, rcpt):
    with on_missing_signature(verify_rig, "accept"):
        d = send_external(verify_rig, rcpt, unsigned_message(rcpt, sender=BANK), sender=BANK)
    assert smime_result(the_result(d.message)) == "none"
    assert subject(d.message) == "Your statement"


# ---------------------------------------------------------------------------------------------
# outbound mail is signed, not verified

def test_internal_mail_is_signed_not_verified(verify_rig, rcpt, tmp_path):
    sent = unsigned_message(rcpt, sender=f"Alice <{ALICE}>", subject="Outbound")
    res = verify_rig.send_swaks(from_=ALICE, to=rcpt, data=sent)
    assert res.accepted, res.transcript
    [d] = verify_rig.sink.wait_for(rcpt)
    assert our_results(d.message) == [], "no Authentication-Results on outbound mail"
    assert subject(d.message) == "Outbound"
    assert rigmod.openssl_verify(d.message, verify_rig.trust_anchor, tmp_path).ok
