# SPDX-License-Identifier: Apache-2.0
"""Crash safety through real Postfix: the milter killed with SIGKILL twice during a stream of
messages, and restarted each time.

The milter listens on a unix socket (what a kill -9 leaves behind as a stale file) and spools
bodies over 4 KB (what it leaves behind as orphaned spool files). After each kill the restart
must bind at once (the stale socket is removed because nothing answers on it), remove the
orphaned spool files (only files named like its own), and keep everything else. Postfix
tempfails what the dead milter could not take (milter_default_action = tempfail); the client
sends those again. In the end every message Postfix accepted is delivered exactly once, signed,
and verifies with `openssl cms -verify`. A second milter started on a live socket refuses to
take it over.

Environment: SMIME_MILTER_BIN as for the other rig tests.
"""
from __future__ import annotations

import grp
import os
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

import rig as rigmod

MESSAGES = 120
KILL_AFTER = (40, 80)     # messages accepted before each kill
SPOOL_THRESHOLD = 4096


def _connectable(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(2)
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


class UnixMilter:
    """smime-milter on a unix socket, started and killed by the test."""

    def __init__(self, binary: Path, config: Path, sock: Path, log: Path):
        self.binary, self.config, self.sock, self.log_path = binary, config, sock, log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(self.binary), "run", "--config", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _connectable(self.sock):
            if self.proc.poll() is not None:
                raise rigmod.RigError(f"milter exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise rigmod.RigError(f"milter did not listen on {self.sock} in {timeout}s:\n{self.log()}")
            time.sleep(0.05)
        # The socket is 0660 (a socket others can write is refused): give it Postfix's group,
        # as `UserID smime-milter:postfix` does for an installed milter.
        os.chown(self.sock, 0, grp.getgrnam("postfix").gr_gid)

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        rigmod.terminate(self.proc)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(scope="module")
def crash_rig(request, milter_bin):
    conftest = request.config.pluginmanager.get_plugin("conftest")
    r = rigmod.Rig(milter_bin=milter_bin)
    spool = r.root / "spool"
    sock = r.root / "milter-sock" / "smime-milter.sock"
    r.milter_settings.extra = (f"SocketMode 0660\nSpoolThreshold {SPOOL_THRESHOLD}\nSpoolDirectory {spool}\n")
    r.start()
    request.addfinalizer(lambda: r.stop(keep=getattr(conftest, "KEEP", False)))
    # The rig's milter listens on inet; this test's own one on a unix socket.
    r.milter.stop()
    sock.parent.mkdir(mode=0o755)
    config = r.milter.config_path.read_text().replace(f"Socket inet:{r.milter.port}@127.0.0.1", f"Socket unix:{sock}")
    assert f"Socket unix:{sock}" in config
    conf_path = r.root / "milter" / "unix.conf"
    conf_path.write_text(config)
    milter = UnixMilter(milter_bin, conf_path, sock, r.root / "milter" / "unix.log")
    milter.start()
    request.addfinalizer(milter.stop)
    r.postfix.postconf(f"smtpd_milters=unix:{sock}", f"non_smtpd_milters=unix:{sock}")
    return r, milter, spool, sock


def _message(n: int) -> bytes:
    # Every third message is over the spool threshold.
    filler = ("".join(f"line {n}.{i} of a long message body\n" for i in range(200)) if n % 3 == 0 else "short\n")
    return rigmod.crlf(f"From: Alice <alice@example.com>\nTo: c{n}@{rigmod.SINK_DOMAIN}\n"
                       f"Subject: crash test {n}\nMessage-ID: <crash-{n}@example.com>\n\n"
                       f"message {n}\n{filler}")


def test_kill9_twice_loses_nothing(crash_rig):
    r, milter, spool, sock = crash_rig
    accepted: list[int] = []
    refused = [0]
    done = threading.Event()
    error: list[BaseException] = []

    def sender():
        try:
            for n in range(MESSAGES):
                deadline = time.monotonic() + 90
                while True:
                    try:
                        r.send_smtp(from_="alice@example.com", to=f"c{n}@{rigmod.SINK_DOMAIN}", data=_message(n))
                        accepted.append(n)
                        break
                    except (OSError, Exception) as e:   # 4xx while the milter is down: send again
                        refused[0] += 1
                        if time.monotonic() > deadline:
                            raise AssertionError(f"message {n} not accepted within 90 s: {e}") from e
                        time.sleep(0.2)
        except BaseException as e:
            error.append(e)
        finally:
            done.set()

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    for round_, after in enumerate(KILL_AFTER):
        rigmod.wait_until(lambda: len(accepted) >= after or done.is_set(), 300, f"{after} messages accepted")
        milter.kill9()
        # What a kill -9 leaves: the socket file, and (made here, so the check does not depend on
        # timing) an orphaned spool file beside a file that is not ours.
        assert stat.S_ISSOCK(os.lstat(sock).st_mode), "the killed milter's socket file is gone"
        spool.mkdir(mode=0o700, exist_ok=True)
        orphan = spool / f"body.Crash{round_}"
        orphan.write_bytes(b"half a body")
        keep = spool / "not-a-spool-file"
        keep.write_bytes(b"keep me")
        started = time.monotonic()
        milter.start(timeout=20)
        assert not orphan.exists(), "the orphaned spool file was not removed"
        assert keep.exists(), "a file that is not a spool file was removed"
        print(f"restart {round_ + 1}: listening after {time.monotonic() - started:.2f}s")
    thread.join(timeout=600)
    assert not error, f"sender failed: {error[0]!r}"
    assert sorted(accepted) == list(range(MESSAGES))
    assert "removed the stale socket" in milter.log()
    assert "orphaned spool file" in milter.log()

    def all_delivered():
        got = {d.rcpts[0].split()[0].strip("<>").lower() for d in r.sink.all()}
        return all(f"c{n}@{rigmod.SINK_DOMAIN}" in got for n in range(MESSAGES))
    rigmod.wait_until(all_delivered, 180, "every accepted message delivered")
    time.sleep(3)   # a duplicate would come now
    by_rcpt: dict[str, list] = {}
    for d in r.sink.all():
        by_rcpt.setdefault(d.rcpts[0].split()[0].strip("<>").lower(), []).append(d)
    work = r.root / "verify"
    for n in range(MESSAGES):
        copies = by_rcpt.get(f"c{n}@{rigmod.SINK_DOMAIN}", [])
        assert len(copies) == 1, f"message {n} delivered {len(copies)} times"
        message = copies[0].message
        assert b"multipart/signed" in message.split(b"\n\n", 1)[0], f"message {n} is not signed"
        assert f"message {n}".encode() in message
        v = rigmod.openssl_verify(message, r.trust_anchor, work)
        assert v.ok, f"message {n} does not verify: {v.output}"
    print(f"{MESSAGES} messages, {refused[0]} refusals while the milter was down")


def test_a_second_milter_does_not_take_a_live_socket(crash_rig):
    r, milter, spool, sock = crash_rig
    log = r.root / "milter" / "second.log"
    with open(log, "wb") as out:
        cp = subprocess.run([str(milter.binary), "run", "--config", str(milter.config)], stdin=subprocess.DEVNULL,
                            stdout=out, stderr=out, timeout=60)
    text = log.read_text(errors="replace")
    assert cp.returncode != 0, text
    assert "another milter is listening" in text, text
    assert _connectable(sock), "the running milter lost its socket"
    r.send_smtp(from_="alice@example.com", to=f"second@{rigmod.SINK_DOMAIN}", data=_message(1))
    got = r.sink.wait_for(f"second@{rigmod.SINK_DOMAIN}")
    assert rigmod.openssl_verify(got[0].message, r.trust_anchor, r.root / "verify2").ok
