#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The demo behind `make demo` (run through scripts/demo.sh).

Makes a fresh test PKI, starts a private Postfix with smime-milter and an smtp-sink next hop
(Tests/integration/rig.py), sends one message with swaks as alice@example.com from the internal
network, then shows the message the next hop received (abridged), `openssl cms -verify`'s verdict
and the signed content. Then the same milter, now also verifying (Mode sv), receives that signed
message from outside, once as it is and once with a disclaimer footer added on the way, and shows
the Authentication-Results and subject tags the recipient gets. Everything runs in a temporary
directory that is removed at the end. Exit status 0 only when the delivered message is signed and
verifies, and inbound verification says pass and fail (with the cause) respectively.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "integration"))
import rig as rigmod  # noqa: E402

MESSAGE = """\
From: Alice Example <alice@example.com>
To: Bob Example <bob@sink.test>
Subject: Signed by smime-milter
Date: {date}
Message-ID: <demo.{stamp}@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Hello Bob,

this message left the mail server with an S/MIME signature that
no mail client had to make. Grüße aus Köln!

Alice
"""


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 72 - len(text)))


def abridge(message: bytes, keep: int = 3) -> str:
    """The message with long base64 runs cut to `keep` lines."""
    out, run = [], []
    b64 = re.compile(r"^[A-Za-z0-9+/=]{40,}$")

    def flush():
        if len(run) > keep + 1:
            out.extend(run[:keep])
            out.append(f"    [... {len(run) - keep} more lines of base64 ...]")
        else:
            out.extend(run)
        run.clear()
    for line in message.decode("utf-8", "replace").split("\n"):
        if b64.match(line):
            run.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out).rstrip("\n")


def main() -> int:
    binary = rigmod.milter_binary()
    if binary is None or not binary.is_file():
        print("demo: smime-milter is not built; run `swift build` or set SMIME_MILTER_BIN", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("demo: needs root (it starts a private Postfix instance)", file=sys.stderr)
        return 2
    import email.utils
    import time
    message = MESSAGE.format(date=email.utils.formatdate(localtime=True), stamp=int(time.time()))

    rig = rigmod.Rig(milter_bin=binary)
    try:
        banner("Starting a private Postfix, smime-milter and an smtp-sink next hop")
        rig.start()
        print(f"milter:   {binary}")
        print(f"postfix:  smtpd on 127.0.0.1:{rig.postfix.int_port}, "
              f"relaying sink.test to smtp-sink on 127.0.0.1:{rig.sink.port}")
        print(f"identity: alice@example.com (RSA-2048, issued by a fresh test CA)")

        banner("Sending with swaks as alice@example.com from 127.0.0.1")
        res = rig.send_swaks(from_="alice@example.com", to="bob@sink.test", data=message)
        smtp_command = re.compile(r"^ -> (EHLO|HELO|MAIL|RCPT|DATA|QUIT|AUTH)\b")
        for line in res.transcript.splitlines():
            # the SMTP dialogue, without the message lines swaks echoes after DATA
            if not line.startswith(" -> ") or smtp_command.match(line):
                print(line)
        if not res.accepted:
            print("demo: Postfix did not accept the message", file=sys.stderr)
            print(rig.diagnostics(), file=sys.stderr)
            return 1

        [delivered] = rig.sink.wait_for("bob@sink.test")
        banner("The message as the next hop received it (abridged)")
        print(abridge(delivered.message))

        banner("openssl cms -verify -in message.eml -CAfile root.pem -out content.txt")
        v = rigmod.openssl_verify(delivered.message, rig.trust_anchor, rig.root / "verify")
        print(v.output.strip())
        emails, kind = rigmod.signer_info(v.signer_pem) if v.signer_pem else ([], "?")
        print(f"signer certificate: {', '.join(emails)} ({kind})")

        banner("The signed content, decoded")
        print(v.content.decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n"))
        content_body = v.content.replace(b"\r\n", b"\n").split(b"\n\n", 1)[-1]
        import quopri
        if b"quoted-printable" in v.content.split(b"\n\n", 1)[0].lower():
            banner("Body after quoted-printable decoding")
            print(quopri.decodestring(content_body).decode("utf-8", "replace").rstrip("\n"))

        milter_lines = [l for l in rig.milter.log().splitlines() if "decision=" in l]
        if milter_lines:
            banner("smime-milter's log line")
            print("\n".join(milter_lines))

        if not v.ok:
            print("\ndemo: FAILED: the delivered message does not verify", file=sys.stderr)
            print(rig.diagnostics(), file=sys.stderr)
            return 1

        banner("Inbound: the recipient's server verifies (Mode sv, TrustAnchors)")
        settings = rigmod.MilterSettings(mode="sv", extra=(
            f"TrustAnchors {rig.trust_anchor}\nSubjectTagPass [signed]\n"
            "SubjectTagFail [SIGNATURE BROKEN]\n"))
        rig.milter.restart(settings)
        nl = b"\r\n" if b"\r\n" in delivered.message else b"\n"
        # A disclaimer gateway on the way appends its footer inside the signed text.
        footer = nl + b"This e-mail and any attachments are confidential." + nl
        tampered = delivered.message.replace(nl + b"Alice" + nl, nl + b"Alice" + nl + footer, 1)
        results = {}
        for to, data in (("carol@sink.test", delivered.message), ("dave@sink.test", tampered)):
            rig.send_smtp(from_="alice@example.com", to=to, data=data, external=True)
            [inbound] = rig.sink.wait_for(to)
            head = inbound.message.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("utf-8", "replace")
            shown = [l for l in re.split(r"\n(?![ \t])", head)
                     if l.lower().startswith(("authentication-results:", "subject:"))]
            label = "as signed" if data is delivered.message else "with a footer added on the way"
            print(f"\n--- received from outside, {label}, delivered to {to}:")
            print("\n".join(shown))
            results[to] = " ".join(shown)
        milter_lines = [l for l in rig.milter.log().splitlines() if "decision=verified" in l]
        if milter_lines:
            banner("smime-milter's log lines (inbound)")
            print("\n".join(milter_lines))
        if "smime=pass" not in results["carol@sink.test"] or "smime=fail" not in results["dave@sink.test"]:
            print("\ndemo: FAILED: inbound verification did not say pass and fail", file=sys.stderr)
            print(rig.diagnostics(), file=sys.stderr)
            return 1
        print("\ndemo: OK: signed by smime-milter, verified by OpenSSL, and verified inbound by smime-milter.")
        return 0
    finally:
        rig.stop()
        print("(cleaned up: Postfix, smtp-sink and the milter stopped; temporary files removed)")


if __name__ == "__main__":
    sys.exit(main())
