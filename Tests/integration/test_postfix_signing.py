# SPDX-License-Identifier: Apache-2.0
"""smime-milter behind a real Postfix: what the next hop (an smtp-sink) receives.

Every test sends with a real client (swaks, Postfix's sendmail, or Python's smtplib where exact
bytes matter), waits (bounded) for the message at the sink, and asserts on the message the sink
received: its structure, `openssl cms -verify` against the test root, the signer certificate, and
the decoded signed content compared with what was sent.
"""
from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import quopri
import time

import pytest

import rig as rigmod
from rig import MilterSettings, crlf, lf

ALICE = "alice@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.com"
PASSWORD = rigmod.SASL_PASSWORDS


# ---------------------------------------------------------------------------------------------
# helpers

def make_message(rcpt: str, *, sender: str = ALICE, subject: str = "Quarterly figures",
                 content_headers: str = "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n",
                 body: bytes | str = "Hello Tom,\n\nthese are the figures.\n-- \nAlice\n") -> bytes:
    """A message with the outer fields whose order the milter must keep (CRLF line ends)."""
    head = (f"From: Alice Example <{sender}>\n"
            f"To: Tom Test <{rcpt}>\n"
            f"Subject: {subject}\n"
            "Date: Mon, 23 Nov 2026 10:00:00 +0000\n"
            f"Message-ID: <{rcpt.split('@')[0]}.{int(time.time() * 1000)}@example.com>\n"
            "X-Custom-One: first\n"
            f"{content_headers}"
            "X-Custom-Two: second\n"
            "\n")
    b = body.encode() if isinstance(body, str) else body
    return crlf(head.encode() + b)


def split(message: bytes) -> tuple[bytes, bytes]:
    m = lf(message)
    head, _, body = m.partition(b"\n\n")
    return head, body


def parse(message: bytes) -> email.message.Message:
    return email.message_from_bytes(lf(message), policy=email.policy.compat32)


def outer_fields(message: bytes, names=("from", "to", "subject", "date", "message-id",
                                        "x-custom-one", "x-custom-two")) -> list[tuple[str, str]]:
    """(name, value) of the named top-level fields, in message order (values unfolded)."""
    return [(k.lower(), " ".join(v.split())) for k, v in parse(message).items() if k.lower() in names]


def decoded_body(entity: bytes) -> tuple[str, bytes]:
    """(Content-Type value, body decoded from its Content-Transfer-Encoding, LF line ends)."""
    msg = parse(entity)
    head, body = split(entity)
    cte = (msg.get("Content-Transfer-Encoding") or "7bit").strip().lower()
    if cte == "quoted-printable":
        data = quopri.decodestring(body)
    elif cte == "base64":
        data = base64.b64decode(body)
    else:
        data = body
    return " ".join((msg.get("Content-Type") or "").split()), lf(data)


def without_received(message: bytes) -> bytes:
    """The message without the Received fields Postfix prepended (each may be folded)."""
    lines = lf(message).split(b"\n")
    i = 0
    while i < len(lines) and lines[i].startswith(b"Received:"):
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\n".join(lines[i:])


def assert_unsigned_and_unchanged(delivered: rigmod.Delivered, sent: bytes) -> None:
    """Not signed, and delivered exactly as sent apart from the Received fields Postfix prepends."""
    ct = parse(delivered.message).get_content_type()
    assert ct not in ("multipart/signed", "application/pkcs7-mime"), f"unexpectedly signed: {ct}"
    assert without_received(delivered.message) == lf(sent)


def verify(rig: rigmod.Rig, delivered: rigmod.Delivered, tmp_path, signer: str,
           key_type: str = "RSA") -> rigmod.Verification:
    """openssl cms -verify succeeds and the signer certificate is `signer`'s of `key_type`."""
    v = rigmod.openssl_verify(delivered.message, rig.trust_anchor, tmp_path)
    assert v.ok, f"openssl cms -verify failed:\n{v.output}"
    emails, kind = rigmod.signer_info(v.signer_pem)
    assert signer in emails
    assert kind == key_type
    return v


def assert_detached(delivered: rigmod.Delivered) -> None:
    msg = parse(delivered.message)
    assert msg.get_content_type() == "multipart/signed"
    assert (msg.get_param("protocol") or "").lower() == "application/pkcs7-signature"
    assert (msg.get_param("micalg") or "").lower() == "sha-256"
    parts = msg.get_payload()
    assert len(parts) == 2
    assert parts[1].get_content_type() in ("application/pkcs7-signature", "application/x-pkcs7-signature")


@contextlib.contextmanager
def milter_config(rig: rigmod.Rig, settings: MilterSettings):
    """Run the milter with other settings for the block, then restore the default ones."""
    rig.milter.restart(settings)
    try:
        yield
    finally:
        rig.milter.restart(MilterSettings())


# ---------------------------------------------------------------------------------------------
# 1. internal client, no SASL

def test_internal_client_is_signed_and_verifies(signing_rig, rcpt, tmp_path):
    sent = make_message(rcpt)
    res = signing_rig.send_swaks(from_=ALICE, to=rcpt, data=sent)
    assert res.accepted, res.transcript
    [d] = signing_rig.sink.wait_for(rcpt)

    assert_detached(d)
    v = verify(signing_rig, d, tmp_path, ALICE)
    # The signed entity carries the original Content-Type and, decoded, the original body.
    ct, content = decoded_body(v.content)
    assert ct == "text/plain; charset=us-ascii"
    assert content == lf(split(sent)[1])
    # The outer header keeps every other field, in order, with its value.
    assert outer_fields(d.message) == outer_fields(sent)
    assert parse(d.message).get("MIME-Version", "").strip() == "1.0"


# ---------------------------------------------------------------------------------------------
# 2. SASL on the external listener

def test_sasl_login_matching_from_is_signed(signing_rig, rcpt, tmp_path):
    sent = make_message(rcpt)
    res = signing_rig.send_swaks(from_=ALICE, to=rcpt, data=sent, external=True,
                                 auth=(ALICE, PASSWORD["alice"]))
    assert res.accepted, res.transcript
    [d] = signing_rig.sink.wait_for(rcpt)
    assert b"with ESMTPA" in split(d.message)[0]  # it really was an authenticated session
    assert_detached(d)
    verify(signing_rig, d, tmp_path, ALICE)


def test_sasl_login_not_allowed_for_from_is_not_signed(signing_rig, rcpt):
    # bob@example.com logs in and sends as alice; the default SenderMap does not allow it.
    sent = make_message(rcpt)
    res = signing_rig.send_swaks(from_=ALICE, to=rcpt, data=sent, external=True,
                                 auth=(BOB, PASSWORD["bob"]))
    assert res.accepted, res.transcript
    [d] = signing_rig.sink.wait_for(rcpt)
    assert_unsigned_and_unchanged(d, sent)


def test_sasl_login_allowed_by_sender_map_is_signed(signing_rig, rcpt, tmp_path):
    settings = MilterSettings(sender_map=f"{ALICE} {BOB}\n")
    with milter_config(signing_rig, settings):
        sent = make_message(rcpt)
        res = signing_rig.send_swaks(from_=ALICE, to=rcpt, data=sent, external=True,
                                     auth=(BOB, PASSWORD["bob"]))
        assert res.accepted, res.transcript
        [d] = signing_rig.sink.wait_for(rcpt)
    assert_detached(d)
    verify(signing_rig, d, tmp_path, ALICE)


# ---------------------------------------------------------------------------------------------
# 3. the sendmail command (non_smtpd_milters)

def test_sendmail_command_is_signed(signing_rig, rcpt, tmp_path):
    sent = make_message(rcpt, subject="From the sendmail command")
    res = signing_rig.send_sendmail(from_=ALICE, to=rcpt, data=sent)
    assert res.accepted, res.transcript
    [d] = signing_rig.sink.wait_for(rcpt)
    assert b"(Postfix, from userid" in split(d.message)[0]  # came through pickup, not smtpd
    assert_detached(d)
    v = verify(signing_rig, d, tmp_path, ALICE)
    assert decoded_body(v.content)[1] == lf(split(sent)[1])
    assert outer_fields(d.message) == outer_fields(sent)


def test_sendmail_command_with_other_envelope_sender_is_not_signed(signing_rig, rcpt):
    sent = make_message(rcpt, subject="Envelope sender is not From")
    res = signing_rig.send_sendmail(from_="someone@example.org", to=rcpt, data=sent)
    assert res.accepted, res.transcript
    [d] = signing_rig.sink.wait_for(rcpt)
    assert parse(d.message).get_content_type() == "text/plain"


# ---------------------------------------------------------------------------------------------
# 4. external client without SASL: inbound mail, untouched

def test_external_client_without_sasl_is_delivered_unchanged(signing_rig, rcpt):
    sent = make_message(rcpt)
    res = signing_rig.send_swaks(from_=ALICE, to=rcpt, data=sent, external=True)
    assert res.accepted, res.transcript
    [d] = signing_rig.sink.wait_for(rcpt)
    assert b"[127.0.0.2]" in split(d.message)[0]
    assert_unsigned_and_unchanged(d, sent)


# ---------------------------------------------------------------------------------------------
# 5. 8-bit mail relayed to a next hop without 8BITMIME (Postfix would down-convert 8-bit parts)

EIGHT_BIT_CASES = {
    "utf-8": ("text/plain; charset=utf-8", "8bit",
              "Grüße aus Köln – naïve café, 1 € ✓\n\nZweite Zeile ÄÖÜ.\n".encode("utf-8")),
    "shift_jis": ("text/plain; charset=Shift_JIS", "8bit",
                  "日本語のテキストです。\n署名のテスト。\n".encode("shift_jis")),
    "iso-2022-jp": ("text/plain; charset=ISO-2022-JP", "7bit",
                    "日本語のテキストです。\n署名のテスト。\n".encode("iso-2022-jp")),
}


@pytest.mark.parametrize("case", sorted(EIGHT_BIT_CASES))
def test_non_ascii_body_to_host_without_8bitmime_still_verifies(signing_rig, rcpt, case, tmp_path):
    ctype, cte, body = EIGHT_BIT_CASES[case]
    to = rcpt.replace(rigmod.SINK_DOMAIN, rigmod.SINK8_DOMAIN)
    sent = make_message(to, subject=f"Non-ASCII {case}",
                        content_headers=f"MIME-Version: 1.0\nContent-Type: {ctype}\n"
                                        f"Content-Transfer-Encoding: {cte}\n",
                        body=body)
    res = signing_rig.send_swaks(from_=ALICE, to=to, data=sent)
    assert res.accepted, res.transcript
    [d] = signing_rig.sink8.wait_for(to)

    assert_detached(d)
    assert all(byte < 0x80 for byte in d.message), "the relayed message is 7-bit"
    v = verify(signing_rig, d, tmp_path, ALICE)
    got_ct, content = decoded_body(v.content)
    assert got_ct == ctype  # the charset is never changed
    assert content == lf(body)
    if cte == "7bit":
        # ISO-2022-JP is 7-bit already: the signed body is byte for byte the original.
        assert split(v.content)[1] == lf(body)


# ---------------------------------------------------------------------------------------------
# 6. EC identity, and the opaque form chosen by the SigningTable

def test_ec_identity_signs_detached(signing_rig, rcpt, tmp_path):
    sent = make_message(rcpt, sender=BOB, subject="From bob (ECDSA P-256)")
    res = signing_rig.send_swaks(from_=BOB, to=rcpt, data=sent)
    assert res.accepted, res.transcript
    [d] = signing_rig.sink.wait_for(rcpt)
    assert_detached(d)
    v = verify(signing_rig, d, tmp_path, BOB, key_type="EC")
    assert decoded_body(v.content)[1] == lf(split(sent)[1])


def test_signing_table_opaque_form(signing_rig, rcpt, tmp_path):
    # carol@example.com is "carol opaque" in the default SigningTable (carol is a PKCS#12 file).
    sent = make_message(rcpt, sender=CAROL, subject="Opaque please")
    res = signing_rig.send_swaks(from_=CAROL, to=rcpt, data=sent)
    assert res.accepted, res.transcript
    [d] = signing_rig.sink.wait_for(rcpt)
    msg = parse(d.message)
    assert msg.get_content_type() in ("application/pkcs7-mime", "application/x-pkcs7-mime")
    assert (msg.get_param("smime-type") or "").lower() == "signed-data"
    assert (msg.get("Content-Transfer-Encoding") or "").strip().lower() == "base64"
    v = verify(signing_rig, d, tmp_path, CAROL)
    ct, content = decoded_body(v.content)
    assert ct == "text/plain; charset=us-ascii"
    assert content == lf(split(sent)[1])
    assert outer_fields(d.message) == outer_fields(sent)


def test_signing_table_opaque_for_alice_with_ec_bob_unchanged(signing_rig, rcpt, tmp_path):
    """The form comes from the SigningTable line, not from the identity: alice switched to opaque."""
    table = (f"{ALICE} alice opaque\n{BOB} bob detached\n")
    with milter_config(signing_rig, MilterSettings(signing_table=table)):
        sent = make_message(rcpt, subject="Alice, opaque")
        res = signing_rig.send_swaks(from_=ALICE, to=rcpt, data=sent)
        assert res.accepted, res.transcript
        [d] = signing_rig.sink.wait_for(rcpt)
    assert parse(d.message).get_content_type() in ("application/pkcs7-mime", "application/x-pkcs7-mime")
    verify(signing_rig, d, tmp_path, ALICE)


# ---------------------------------------------------------------------------------------------
# 7. milter down: Postfix tempfails, nothing is lost

def test_milter_down_tempfails_and_mail_is_signed_after_restart(signing_rig, rcpt, tmp_path):
    """What is asserted:
    - SMTP: with the milter stopped, the client gets a 4xx (451 4.7.1) and Postfix queues
      nothing, so the mail stays the client's responsibility; resent after the milter is back,
      it is delivered signed.
    - sendmail command: postdrop accepts the message; it waits in the maildrop queue (not
      delivered, not bounced) while the milter is down; after the milter is back and
      `postqueue -f`, it is delivered signed.
    """
    r = signing_rig
    smtp_rcpt = rcpt
    local_rcpt = rcpt.replace("@", "-local@")
    smtp_msg = make_message(smtp_rcpt, subject="Sent while the milter was down")
    local_msg = make_message(local_rcpt, subject="Submitted while the milter was down")

    r.milter.stop()
    try:
        res = r.send_swaks(from_=ALICE, to=smtp_rcpt, data=smtp_msg)
        assert not res.accepted
        assert "451 4.7.1" in res.transcript
        assert r.postfix.queue_ids() == []

        res = r.send_sendmail(from_=ALICE, to=local_rcpt, data=local_msg)
        assert res.accepted, res.transcript
        rigmod.wait_until(lambda: any("postfix/cleanup[" in line and "milter-reject" in line
                                      for line in r.postfix.log_text().splitlines()),
                          30, "cleanup to meet the stopped milter")
        assert len(r.postfix.maildrop_files()) == 1
        assert r.sink.for_rcpt(smtp_rcpt) == [] and r.sink.for_rcpt(local_rcpt) == []
    finally:
        r.milter.start()

    r.postfix.flush()
    res = r.send_swaks(from_=ALICE, to=smtp_rcpt, data=smtp_msg)
    assert res.accepted, res.transcript
    for to, msg in ((smtp_rcpt, smtp_msg), (local_rcpt, local_msg)):
        [d] = r.sink.wait_for(to)
        assert_detached(d)
        v = verify(r, d, tmp_path, ALICE)
        assert decoded_body(v.content)[1] == lf(split(msg)[1])
    assert r.postfix.maildrop_files() == []


# ---------------------------------------------------------------------------------------------
# 8. already signed by the client: passed on untouched

def test_already_signed_message_is_delivered_untouched(signing_rig, rcpt, tmp_path):
    pki = signing_rig.pki_dir
    entity = crlf("Content-Type: text/plain; charset=us-ascii\n\nSigned by Alice's own mail client.\n")
    signed = rigmod.openssl_sign(entity, pki / "certs" / "alice.pem", tmp_path,
                                 certfile=pki / "intermediate.pem")
    sent = crlf(f"From: {ALICE}\nTo: {rcpt}\nSubject: Already signed\n"
                "Date: Mon, 23 Nov 2026 10:00:00 +0000\n"
                f"Message-ID: <already.{int(time.time() * 1000)}@example.com>\n".encode()) + crlf(signed)
    # smtplib: exact bytes on the wire, so "untouched" can be checked byte for byte.
    signing_rig.send_smtp(from_=ALICE, to=rcpt, data=sent)
    [d] = signing_rig.sink.wait_for(rcpt)
    assert split(d.message)[1] == lf(split(sent)[1]), "body is byte-identical (line ends aside)"
    assert without_received(d.message) == lf(sent), "and so is the header"
    verify(signing_rig, d, tmp_path, ALICE)


# ---------------------------------------------------------------------------------------------
# more of the policy, end to end

def test_two_from_fields_are_not_signed(signing_rig, rcpt):
    sent = crlf(f"From: {ALICE}\nFrom: {BOB}\nTo: {rcpt}\nSubject: Two From fields\n"
                "Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <two-from.{int(time.time() * 1000)}@example.com>\n"
                "\nWho wrote this?\n")
    res = signing_rig.send_swaks(from_=ALICE, to=rcpt, data=sent)
    assert res.accepted, res.transcript
    [d] = signing_rig.sink.wait_for(rcpt)
    assert_unsigned_and_unchanged(d, sent)


def test_from_without_identity_is_sent_unsigned(signing_rig, rcpt):
    who = "dave@example.com"
    sent = make_message(rcpt, sender=who, subject="No certificate for dave")
    res = signing_rig.send_swaks(from_=who, to=rcpt, data=sent)
    assert res.accepted, res.transcript
    [d] = signing_rig.sink.wait_for(rcpt)
    assert_unsigned_and_unchanged(d, sent)


# ---------------------------------------------------------------------------------------------
# the same delivered signatures through the libraries of other mail clients

@pytest.mark.parametrize("sender,form", [(ALICE, "detached"), (BOB, "detached"), (CAROL, "opaque")])
def test_delivered_signature_verifies_with_nss_and_gpgsm(signing_rig, rcpt, tmp_path, sender, form):
    sent = make_message(rcpt, sender=sender, subject=f"For Thunderbird and GnuPG ({form})")
    res = signing_rig.send_swaks(from_=sender, to=rcpt, data=sent)
    assert res.accepted, res.transcript
    [d] = signing_rig.sink.wait_for(rcpt)
    content, _ = rigmod.signature_parts(d.message)
    assert (content is None) == (form == "opaque")
    ok, log = rigmod.nss_verify(d.message, signing_rig.trust_anchor, tmp_path)
    assert ok, f"NSS cmsutil:\n{log}"
    ok, log = rigmod.gpgsm_verify(d.message, signing_rig.trust_anchor, tmp_path)
    assert ok, f"gpgsm:\n{log}"
