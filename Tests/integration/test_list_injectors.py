# SPDX-License-Identifier: Apache-2.0
"""Real injectors behind a real Postfix, beside the MIMEDefang case (test_postfix_broken.py):
signed mail (made by `openssl cms -sign`, as a mail client would) goes out through Postfix to
a tool that alters it, comes back through Postfix, and smime-milter verifies it there:

- altermime (Debian `altermime`) as an SMTP content filter (Postfix `smtp` transport to the
  filter, the filter re-injects over SMTP, as the Postfix FILTER_README "advanced" content
  filter does): it appends its disclaimer inside signed parts nested in multipart/mixed; the
  diagnosis names the cause, confirmed by the signed digest;
- Mailman 3 (Debian `mailman3`, a private instance: own configuration, SQLite database, queue
  and logs in the rig's directory; LMTP in from Postfix, SMTP back to Postfix) re-posting signed
  mail with its footer: in wrap mode (a top-level multipart/signed is put in a multipart/mixed
  with the footer as a part after it) and append mode (a multipart/mixed post gets the footer as
  its last part). Mailman leaves the signed part intact in both: the signature still holds, and
  the verdict is `policy` (only a part is signed) naming the footer part after it.

The milter here treats every loopback client as external (InternalHosts is an address nobody
connects from), so each pass through Postfix is verified; the copy at the sink carries the
verdict of the last pass (the milter removes fields that claim its authserv-id).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import socketserver
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import rig as rigmod
from conftest import KEEP, _require_tools
from rig import crlf, lf
from test_postfix_verify import ALICE, smime_result, the_result, verify_settings

LIST_DOMAIN = "lists.test"
FILTER_DOMAIN = "filter.test"
LIST = f"demo@{LIST_DOMAIN}"
FOOTER = "-- \nDemo list: demo@lists.test\nUnsubscribe: demo-leave@lists.test\n"
DISCLAIMER = "Company disclaimer: this message may be confidential.\n"

TEXT = "Content-Type: text/plain; charset=us-ascii\n\nHello Tom,\nthe figures are 42.\n\n-- \nAlice\n"
ALTERNATIVE = """\
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
# Deeper: the signed entity is a multipart/mixed holding an alternative and an attachment.
MIXED = """\
Content-Type: multipart/mixed; boundary="mix-42"

This is a multi-part message in MIME format.
--mix-42
""" + ALTERNATIVE + """
--mix-42
Content-Type: application/octet-stream; name="data.bin"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="data.bin"

AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
--mix-42--
"""


def mailman_why_not() -> str | None:
    if not Path("/usr/lib/mailman3/bin/master").exists() or shutil.which("mailman") is None:
        return "Mailman 3 is not installed (apt-get install mailman3)"
    return None


# ---------------------------------------------------------------------------------------------
# the altermime content filter: SMTP in, altermime, SMTP back into Postfix

class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for Postfix's smtp client: one or more transactions per connection."""

    def handle(self):
        def say(text: str) -> None:
            self.wfile.write(text.encode() + b"\r\n")
            self.wfile.flush()
        say("220 filter.smime-milter.test ESMTP")
        sender, rcpts, data = None, [], None
        while True:
            line = self.rfile.readline()
            if not line:
                return
            if data is not None:
                if line in (b".\r\n", b".\n"):
                    try:
                        self.server.deliver(sender, rcpts, b"".join(data))
                        say("250 2.0.0 filtered")
                    except Exception as e:  # the test sees it as a deferral in the log
                        say(f"451 4.3.0 filter failed: {e}".replace("\n", " ")[:400])
                    sender, rcpts, data = None, [], None
                    continue
                data.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line.strip().split(b" ", 1)[0].split(b":", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                say("250 filter.smime-milter.test")
            elif verb == b"MAIL":
                sender = line.split(b":", 1)[1].strip().split(b" ")[0].strip(b"<>").decode()
                say("250 2.1.0 ok")
            elif verb == b"RCPT":
                rcpts.append(line.split(b":", 1)[1].strip().split(b" ")[0].strip(b"<>").decode())
                say("250 2.1.5 ok")
            elif verb == b"DATA":
                say("354 go ahead")
                data = []
            elif verb == b"QUIT":
                say("221 2.0.0 bye")
                return
            else:
                say("250 2.0.0 ok")


class AltermimeFilter(socketserver.ThreadingTCPServer):
    """Runs the real altermime on each message (stored with LF, as altermime expects) and sends
    the result back into Postfix for the recipients at the sink (x@filter.test -> x@sink.test)."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, rig: rigmod.Rig, workdir: Path):
        super().__init__((rigmod.INTERNAL_ADDR, 0), _SMTPHandler)
        self.rig = rig
        self.workdir = workdir
        self.arguments: list[str] = []
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def deliver(self, sender: str, rcpts: list[str], data: bytes) -> None:
        fd, path = tempfile.mkstemp(dir=self.workdir, suffix=".eml")
        with os.fdopen(fd, "wb") as f:
            f.write(lf(data))
        rigmod.run(["altermime", f"--input={path}", *self.arguments], cwd=str(self.workdir))
        altered = Path(path).read_bytes()
        (Path(path).with_suffix(".altered")).write_bytes(altered)
        self.rig.send_smtp(from_=sender, to=[r.replace(f"@{FILTER_DOMAIN}", f"@{rigmod.SINK_DOMAIN}") for r in rcpts],
                           data=crlf(altered))


# ---------------------------------------------------------------------------------------------
# a private Mailman 3

class Mailman:
    """Mailman 3 with its own configuration under `root`: LMTP on a free port, SMTP out to Postfix."""

    def __init__(self, root: Path, smtp_port: int):
        self.root = root
        self.var = root / "var"
        self.lmtp_port = rigmod.free_port()
        self.config = root / "mailman.cfg"
        self.smtp_port = smtp_port
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str, input: bytes | None = None) -> str:
        return rigmod.run(["mailman", "-C", str(self.config), "--run-as-root", *args], input=input, timeout=120).stdout.decode()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        runners_off = "".join(f"[runner.{name}]\nstart: no\n" for name in ("rest", "archive", "nntp", "digest", "bounces", "task"))
        self.config.write_text(f"""\
[mailman]
site_owner: postmaster@example.com
layout: rig
[paths.rig]
var_dir: {self.var}
pid_file: {self.var}/master.pid
bin_dir: /usr/lib/mailman3/bin
[mta]
incoming: mailman.mta.null.NullMTA
outgoing: mailman.mta.deliver.deliver
lmtp_host: {rigmod.INTERNAL_ADDR}
lmtp_port: {self.lmtp_port}
smtp_host: {rigmod.INTERNAL_ADDR}
smtp_port: {self.smtp_port}
[webservice]
port: {rigmod.free_port()}
{runners_off}[archiver.prototype]
enable: no
""")
        self.cli("create", LIST)
        # The list's footer: Mailman's template for regular deliveries.
        template = self.var / "templates" / "lists" / LIST.replace("@", ".") / "en"
        template.mkdir(parents=True, exist_ok=True)
        (template / "list:member:regular:footer.txt").write_text(FOOTER)
        members = self.root / "members"
        members.write_text(f"members@{rigmod.SINK_DOMAIN}\n")
        self.cli("shell", "-l", LIST, input=(
            b"from mailman.interfaces.action import Action\n"
            b"m.default_nonmember_action = Action.accept\n"
            b"m.send_welcome_message = False\n"
            b"commit()\n"))
        self.cli("addmembers", str(members), LIST)
        log = open(self.root / "master.log", "wb")
        self.proc = subprocess.Popen(["/usr/lib/mailman3/bin/master", "-C", str(self.config), "-n"],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        rigmod.wait_for_port(rigmod.INTERNAL_ADDR, self.lmtp_port, 90, "Mailman's LMTP runner",
                             alive=lambda: self.proc.poll() is None)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # The master passes SIGTERM on to its runners and waits for them.
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)

    def log(self) -> str:
        out = ""
        for name in ("mailman.log", "smtp.log", "error.log"):
            p = self.var / "logs" / name
            if p.exists():
                out += f"== {name}\n" + p.read_text(errors="replace")[-4000:]
        return out


# ---------------------------------------------------------------------------------------------
# the rig

@pytest.fixture(scope="module")
def injector_rig(request, milter_bin) -> tuple[rigmod.Rig, AltermimeFilter, Mailman | None]:
    _require_tools()
    if shutil.which("altermime") is None:
        pytest.fail("altermime is needed for these tests (apt-get install altermime)")
    r = rigmod.Rig(milter_bin=milter_bin)
    r.milter_settings = dataclasses.replace(verify_settings(r), internal_hosts="192.0.2.1")
    r.start()
    request.addfinalizer(lambda: r.stop(keep=KEEP))
    filt = AltermimeFilter(r, r.root)
    filt.thread.start()
    request.addfinalizer(filt.shutdown)
    mailman = None
    if mailman_why_not() is None:
        mailman = Mailman(r.root / "mailman", r.postfix.int_port)
        request.addfinalizer(mailman.stop)
        mailman.start()
    p = r.postfix
    transports = (f"{rigmod.SINK_DOMAIN}=smtp:[{rigmod.INTERNAL_ADDR}]:{p.sink_port}, "
                  f"{rigmod.SINK8_DOMAIN}=smtp:[{rigmod.INTERNAL_ADDR}]:{p.sink8_port}, "
                  f"{FILTER_DOMAIN}=smtp:[{rigmod.INTERNAL_ADDR}]:{filt.port}")
    if mailman:
        transports += f", {LIST_DOMAIN}=lmtp:[{rigmod.INTERNAL_ADDR}]:{mailman.lmtp_port}"
        # The rig's master.cf has no lmtp client service; Postfix delivers to Mailman with it.
        rigmod.run(["postconf", "-c", str(p.config_dir), "-M", "lmtp/unix=lmtp unix - - n - - lmtp"])
    p.postconf(f"relay_domains={rigmod.SINK_DOMAIN} {rigmod.SINK8_DOMAIN} {FILTER_DOMAIN} {LIST_DOMAIN}",
               f"transport_maps=inline:{{ {transports} }}")
    if KEEP:
        print(f"\nrig directory kept: {r.root}")
    return r, filt, mailman


def client_signed(rig: rigmod.Rig, entity: str, workdir: Path) -> bytes:
    """The multipart/signed entity (Content-Type, blank line, body) by alice, openssl cms -sign."""
    pki = rig.pki_dir
    signed = rigmod.openssl_sign(crlf(entity), pki / "certs" / "alice.pem", workdir, certfile=pki / "intermediate.pem")
    return crlf(signed.replace(b"MIME-Version: 1.0\n", b"", 1).replace(b"MIME-Version: 1.0\r\n", b"", 1))


def head(to: str, subject: str) -> bytes:
    return crlf(f"From: Alice <{ALICE}>\nTo: {to}\nSubject: {subject}\nDate: Mon, 23 Nov 2026 10:00:00 +0000\n"
                f"Message-ID: <{abs(hash((to, subject, time.time())))}@example.com>\nMIME-Version: 1.0\n")


def in_mixed(signed: bytes) -> bytes:
    """multipart/mixed holding the signed part and an attachment (a forwarded or list-wrapped
    signature: where altermime reaches signed text)."""
    return (crlf('Content-Type: multipart/mixed; boundary="outer"\n\n--outer\n') + signed
            + crlf("\n--outer\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAAA\n--outer--\n"))


def diagnose(rig: rigmod.Rig, milter_bin: Path, message: bytes, workdir: Path) -> str:
    path = workdir / f"delivered-{time.time_ns()}.eml"
    path.write_bytes(message)
    cp = rigmod.run([str(milter_bin), "diagnose", "--trust", str(rig.trust_anchor), str(path)], check=False)
    return cp.stdout.decode() + cp.stderr.decode()


# ---------------------------------------------------------------------------------------------
# altermime

@pytest.mark.parametrize("entity,arguments,cause", [
    (TEXT, ["--disclaimer"], "footer appended to text/plain part (confirmed)"),
    (ALTERNATIVE, ["--disclaimer", "--disclaimer-html"], "footer appended to text/plain and text/html parts (confirmed)"),
    (MIXED, ["--disclaimer"], "footer appended to text/plain part (confirmed)"),
], ids=["text", "alternative", "mixed-in-signed"])
def test_altermime_on_nested_signed_parts_is_diagnosed(injector_rig, milter_bin, rcpt, tmp_path, entity, arguments, cause):
    rig, filt, _ = injector_rig
    disclaimer = tmp_path / "disclaimer.txt"
    disclaimer.write_text(DISCLAIMER)
    tmp_path.chmod(0o755)
    filt.arguments = [f"{a}={disclaimer}" for a in arguments]
    to = rcpt.replace(f"@{rigmod.SINK_DOMAIN}", f"@{FILTER_DOMAIN}")
    data = head(to, "Quarterly figures") + in_mixed(client_signed(rig, entity, tmp_path))
    rig.send_smtp(from_=ALICE, to=to, data=data, external=True)
    [d] = rig.sink.wait_for(rcpt)
    assert DISCLAIMER.strip() in d.message.decode(errors="replace"), "altermime added nothing"
    ar = the_result(d.message)
    assert smime_result(ar) == "fail", ar
    assert "body altered after signing" in ar, ar
    out = diagnose(rig, milter_bin, d.message, tmp_path)
    assert f"diagnosis: {cause}" in out, out
    assert "Company disclaimer: this message may be confidential." in out, out


# ---------------------------------------------------------------------------------------------
# Mailman 3

def _mailman(injector_rig) -> tuple[rigmod.Rig, Mailman]:
    rig, _, mailman = injector_rig
    why = mailman_why_not()
    if why or mailman is None:
        pytest.fail(f"Mailman 3 is needed for these tests: {why}")
    return rig, mailman


def _post(rig: rigmod.Rig, mailman: Mailman, body: bytes, subject: str) -> rigmod.Delivered:
    member = f"members@{rigmod.SINK_DOMAIN}"
    before = len(rig.sink.for_rcpt(member))
    rig.send_smtp(from_=ALICE, to=LIST, data=head(LIST, subject) + body, external=True)
    try:
        found = rig.sink.wait_for(member, count=before + 1, timeout=90)
    except rigmod.RigError as e:
        raise AssertionError(f"{e}\n{mailman.log()}\n{rig.postfix.log_tail()}")
    [d] = [m for m in found if subject in (m.parsed()["Subject"] or "")]
    return d


def test_mailman_wrap_mode_leaves_the_signature_intact_and_names_its_footer(injector_rig, milter_bin, tmp_path):
    rig, mailman = _mailman(injector_rig)
    signed = client_signed(rig, TEXT, tmp_path)
    d = _post(rig, mailman, signed, "wrap mode")
    msg = d.parsed()
    assert msg.get_content_type() == "multipart/mixed"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == ["multipart/signed", "text/plain"]
    assert "Demo list: demo@lists.test" in parts[1].get_payload(decode=True).decode()
    ar = the_result(d.message)
    assert smime_result(ar) == "policy", ar
    assert "only part 1 is signed" in ar and "part 2 [text/plain] after it" in ar, ar
    out = diagnose(rig, milter_bin, d.message, tmp_path)
    assert "body altered" not in out, out
    assert "Demo list: demo@lists.test" in out, out  # the footer part, named with its first line


def test_mailman_append_mode_adds_a_footer_part_after_the_signed_part(injector_rig, milter_bin, tmp_path):
    rig, mailman = _mailman(injector_rig)
    body = in_mixed(client_signed(rig, ALTERNATIVE, tmp_path))
    d = _post(rig, mailman, body, "append mode")
    msg = d.parsed()
    assert msg.get_content_type() == "multipart/mixed"
    types = [p.get_content_type() for p in msg.get_payload()]
    assert types == ["multipart/signed", "application/octet-stream", "text/plain"], types
    ar = the_result(d.message)
    assert smime_result(ar) == "policy", ar
    assert "part 3 [text/plain] after it" in ar, ar
    out = diagnose(rig, milter_bin, d.message, tmp_path)
    assert "body altered" not in out, out
