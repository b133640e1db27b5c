# SPDX-License-Identifier: Apache-2.0
"""Outbound mail signed by the user's mail client, behind a real Postfix with a real disclaimer
milter before ours: `smtpd_milters = <MIMEDefang>, <smime-milter>`.

The client signature is made by `openssl cms -sign` with the test PKI (alice RSA, bob EC), as a
mail client would; MIMEDefang (rig.MIMEDEFANG_FILTER) then appends a footer to the signed text
and HTML parts, and smime-milter sees the broken signature at end-of-message:

- alice (identity, default OnBrokenSignature = resign): delivered re-signed by us, verifying with
  openssl cms, NSS cmsutil and gpgsm, the footer inside the signed content;
- bob (SigningTable `OnBrokenSignature=strip`): delivered unsigned with the X-SMIME-Milter
  warning, and one report mail to BrokenSignatureReport (routed to the sink); a second broken
  message within the hour sends no second report;
- intact client signatures pass untouched (byte-identical body): through MIMEDefang's stock
  append_text_boilerplate (which leaves multipart/signed alone) and with no disclaimer milter.

The milter runs without TrustAnchors: integrity is checked with an empty trust store.
"""
from __future__ import annotations

import contextlib
import email
import email.policy
import time
from pathlib import Path

import pytest

import rig as rigmod
from conftest import KEEP, _require_tools
from rig import DISCLAIMER_TEXT, MilterSettings, crlf, lf

ALICE = "alice@example.com"
BOB = "bob@example.com"
PASSWORD = rigmod.SASL_PASSWORDS
REPORT_TO = f"postmaster@{rigmod.SINK_DOMAIN}"

SIGNING_TABLE = ("alice@example.com alice detached\n"
                 "bob@example.com bob detached OnBrokenSignature=strip\n")

TEXT_ENTITY = "Content-Type: text/plain; charset=us-ascii\n\nHello Tom,\nthe figures are 42.\n"
ALTERNATIVE_ENTITY = """\
Content-Type: multipart/alternative; boundary="alt-42"

--alt-42
Content-Type: text/plain; charset=us-ascii

Hello Tom,
the figures are 42.
--alt-42
Content-Type: text/html; charset=us-ascii

<html><body><p>Hello Tom,</p><p>the figures are 42.</p></body></html>
--alt-42--
"""


@pytest.fixture(scope="module")
def broken_rig(request, milter_bin) -> rigmod.Rig:
    _require_tools()
    why = rigmod.mimedefang_available()
    if why:
        pytest.fail(f"MIMEDefang is needed for these tests: {why}")
    r = rigmod.Rig(milter_bin=milter_bin, disclaimer=True)
    r.milter_settings = MilterSettings(signing_table=SIGNING_TABLE, extra=(
        f"SendmailCommand {r.sendmail_wrapper()}\n"
        f"BrokenSignatureReport {REPORT_TO}\n"))
    r.start()
    request.node._rig = r
    if KEEP:
        print(f"\nrig directory kept: {r.root}")
    request.addfinalizer(lambda: r.stop(keep=KEEP))
    return r



# ---------------------------------------------------------------------------------------------
# messages and helpers

def client_signed(rig: rigmod.Rig, entity: str, rcpt: str, sender: str, workdir: Path) -> bytes:
    """A whole message whose body the mail client signed (openssl cms -sign, detached)."""
    pki = rig.pki_dir
    if sender == BOB:
        signed = rigmod.openssl_sign(crlf(entity), pki / "certs" / "bob.pem", workdir,
                                     key=pki / "certs" / "bob.key", certfile=pki / "intermediate.pem")
    else:
        signed = rigmod.openssl_sign(crlf(entity), pki / "certs" / "alice.pem", workdir,
                                     certfile=pki / "intermediate.pem")
    head = (f"From: <{sender}>\nTo: Tom Test <{rcpt}>\nSubject: Quarterly figures\n"
            "Date: Mon, 23 Nov 2026 10:00:00 +0000\n"
            f"Message-ID: <{rcpt.split('@')[0]}.{int(time.time() * 1000)}@example.com>\n")
    return crlf(head) + crlf(signed)


def send(rig: rigmod.Rig, rcpt: str, data: bytes, sender: str) -> rigmod.Delivered:
    """Submit with SASL as the sender (exact bytes) and return the delivered copy."""
    login = sender.split("@")[0]
    rig.send_smtp(from_=sender, to=rcpt, data=data, auth=(sender, PASSWORD[login]))
    [d] = rig.sink.wait_for(rcpt)
    return d


def milter_line(rig: rigmod.Rig, *needles: str) -> str:
    """The milter's log line containing every needle (waits, bounded)."""
    def find():
        return next((line for line in rig.milter.log().splitlines() if all(n in line for n in needles)), None)
    return rigmod.wait_until(find, 20, f"a milter log line with {needles!r}")


def queue_id(d: rigmod.Delivered) -> str:
    """The queue id of our Postfix in the delivered copy's first Received field ("... id QUEUEID")."""
    import re
    received = d.parsed().get_all("Received")[0]
    m = re.search(r"\bid ([0-9A-Za-z]+)", received)
    assert m, received
    return m.group(1)


def message_id(data: bytes) -> str:
    return email.message_from_bytes(data, policy=email.policy.compat32)["Message-ID"].strip()


def body_after_header(message: bytes) -> bytes:
    return lf(message).split(b"\n\n", 1)[1]


@contextlib.contextmanager
def without_disclaimer(rig: rigmod.Rig):
    """Run Postfix with only smime-milter in smtpd_milters for the block."""
    ours = rig.postfix.milter_socket
    rig.postfix.postconf(f"smtpd_milters={ours}", f"non_smtpd_milters={ours}")
    try:
        yield
    finally:
        both = ", ".join(rig.postfix.milters_before + [ours])
        rig.postfix.postconf(f"smtpd_milters={both}", f"non_smtpd_milters={both}")


# ---------------------------------------------------------------------------------------------
# the rig itself

def test_postfix_runs_mimedefang_before_smime_milter(broken_rig):
    value = rigmod.run(["postconf", "-c", str(broken_rig.postfix.config_dir), "-h", "smtpd_milters"]).stdout.decode()
    milters = [m.strip() for m in value.split(",")]
    assert milters == [broken_rig.disclaimer.postfix_socket, broken_rig.postfix.milter_socket]


# ---------------------------------------------------------------------------------------------
# resign (alice: an identity exists, OnBrokenSignature not set)

def test_broken_signature_is_resigned_and_verifies_everywhere(broken_rig, rcpt, tmp_path):
    data = client_signed(broken_rig, ALTERNATIVE_ENTITY, rcpt, ALICE, tmp_path)
    d = send(broken_rig, rcpt, data, ALICE)
    msg = d.parsed()
    assert msg.get_content_type() == "multipart/signed"
    assert "X-Scanned-By" in msg, "MIMEDefang did not see the message"
    assert b"X-SMIME-Milter" not in d.header_bytes
    # Exactly one signature layer: ours.
    assert d.message.count(b"application/pkcs7-signature") == 2  # protocol= and the part's type
    v = rigmod.openssl_verify(d.message, broken_rig.trust_anchor, tmp_path)
    assert v.ok, v.output
    emails, kind = rigmod.signer_info(v.signer_pem)
    assert emails == [ALICE] and kind == "RSA"
    # The footer MIMEDefang added is inside what we signed, in both alternatives.
    content = v.content.decode()
    assert content.startswith('Content-Type: multipart/alternative; boundary="alt-42"')
    assert content.count(DISCLAIMER_TEXT) == 2
    assert "<p>Example Corp: this e-mail is confidential.</p>" in content
    ok, log = rigmod.nss_verify(d.message, broken_rig.trust_anchor, tmp_path)
    assert ok, log
    ok, log = rigmod.gpgsm_verify(d.message, broken_rig.trust_anchor, tmp_path)
    assert ok, log
    line = milter_line(broken_rig, f"{queue_id(d)}:")
    assert "decision=signed" in line and "identity=alice" in line
    assert "broken_signature=\"body altered after signing: " in line  # with the diagnosis
    assert "on_broken=resign" in line
    # No report for a re-signed message.
    assert all(ALICE not in (r.parsed()["Subject"] or "") for r in broken_rig.sink.for_rcpt(REPORT_TO))


# ---------------------------------------------------------------------------------------------
# strip (bob: OnBrokenSignature=strip in the SigningTable), report and its rate limit

def test_broken_signature_is_stripped_with_warning_and_one_report(broken_rig, rcpt, tmp_path):
    data = client_signed(broken_rig, TEXT_ENTITY, rcpt, BOB, tmp_path)
    d = send(broken_rig, rcpt, data, BOB)
    msg = d.parsed()
    # Delivered unsigned: the content as MIMEDefang left it, no signature anywhere.
    assert msg.get_content_type() == "text/plain"
    assert b"multipart/signed" not in d.message and b"pkcs7" not in d.message
    text = msg.get_payload(decode=True).decode()
    assert text.startswith("Hello Tom,\nthe figures are 42.\n")
    assert DISCLAIMER_TEXT in text
    warning = " ".join(msg["X-SMIME-Milter"].split())
    # The diagnosis, proven with the signed messageDigest: MIMEDefang appended a footer.
    assert warning == ("original S/MIME signature by bob@example.com removed: "
                       "body altered after signing: footer appended to text/plain part (confirmed)"), warning
    line = milter_line(broken_rig, f"{queue_id(d)}:")
    assert "decision=stripped" in line and "from=<bob@example.com>" in line and "on_broken=strip" in line
    # The report mail, through the rig's sendmail command, at the BrokenSignatureReport address.
    [report] = broken_rig.sink.wait_for(REPORT_TO)
    rmsg = report.parsed()
    assert "bob@example.com" in rmsg["Subject"]
    assert rmsg["Auto-Submitted"] == "auto-generated"
    rtext = rmsg.get_payload(decode=True).decode()
    assert message_id(data) in rtext
    assert "footer appended to text/plain part (confirmed)" in rtext
    assert f"footer:     {DISCLAIMER_TEXT}" in rtext

    # A second broken message from bob within the hour: stripped again, no second report.
    rcpt2 = "second-" + rcpt
    data2 = client_signed(broken_rig, TEXT_ENTITY, rcpt2, BOB, tmp_path)
    d2 = send(broken_rig, rcpt2, data2, BOB)
    assert d2.parsed().get_content_type() == "text/plain"
    assert "X-SMIME-Milter" in d2.parsed()
    milter_line(broken_rig, f"{queue_id(d2)}:", "decision=stripped")
    milter_line(broken_rig, f"{queue_id(d2)}:", "about bob@example.com held back (one per sender per hour)")
    # Nothing else is on its way: the queue is empty, and the sink still has one report.
    rigmod.wait_until(lambda: not broken_rig.postfix.queue_ids() and not broken_rig.postfix.maildrop_files(),
                      30, "an empty Postfix queue")
    assert len(broken_rig.sink.for_rcpt(REPORT_TO)) == 1


# ---------------------------------------------------------------------------------------------
# intact signatures pass untouched

def test_stock_mimedefang_boilerplate_leaves_signed_mail_intact(broken_rig, tmp_path):
    # MIMEDefang's own append_text_boilerplate skips multipart/signed: the client signature
    # survives, and smime-milter passes the message on untouched (never signs twice).
    rcpt = f"stock-intact-{int(time.time() * 1000)}@{rigmod.SINK_DOMAIN}"
    data = client_signed(broken_rig, TEXT_ENTITY, rcpt, ALICE, tmp_path)
    d = send(broken_rig, rcpt, data, ALICE)
    assert "X-Scanned-By" in d.parsed()
    assert body_after_header(d.message) == body_after_header(data)
    v = rigmod.openssl_verify(d.message, broken_rig.trust_anchor, tmp_path)
    assert v.ok, v.output
    assert DISCLAIMER_TEXT not in d.message.decode()
    line = milter_line(broken_rig, f"{queue_id(d)}:")
    assert 'decision=skipped reason="already signed, signature intact"' in line


def test_intact_signature_without_disclaimer_milter_passes_byte_identical(broken_rig, rcpt, tmp_path):
    with without_disclaimer(broken_rig):
        data = client_signed(broken_rig, ALTERNATIVE_ENTITY, rcpt, ALICE, tmp_path)
        d = send(broken_rig, rcpt, data, ALICE)
    assert "X-Scanned-By" not in d.parsed()
    assert b"X-SMIME-Milter" not in d.header_bytes
    assert body_after_header(d.message) == body_after_header(data)
    # The Content-Type is the client's, unchanged.
    sent = email.message_from_bytes(data, policy=email.policy.compat32)
    assert d.parsed()["Content-Type"] == sent["Content-Type"]
    v = rigmod.openssl_verify(d.message, broken_rig.trust_anchor, tmp_path)
    assert v.ok, v.output
    emails, _ = rigmod.signer_info(v.signer_pem)
    assert emails == [ALICE]
    line = milter_line(broken_rig, f"{queue_id(d)}:")
    assert 'decision=skipped reason="already signed, signature intact"' in line
