# SPDX-License-Identifier: Apache-2.0
"""A private, throw-away Postfix instance with smtp-sink next hops, Cyrus SASL and the milter.

Used by the pytest fixtures (conftest.py) and by scripts/demo.py. Nothing outside the rig's
temporary directory is written: Postfix runs with its own config directory
(`postfix -c DIR`), queue directory, data directory and log file, on free loopback ports.
The machine's /etc/postfix is only read (Postfix's own postfix-files/dynamicmaps.cf).

Layout of the temporary directory (mode 0755 so Postfix's unprivileged daemons can reach it):

    postfix/          config_directory: main.cf, master.cf, sasl/smtpd.conf
    queue/            queue_directory
    data/             data_directory (owned by postfix)
    sasl/sasldb2      Cyrus sasldb (owned by postfix)
    maillog           Postfix's log (maillog_file, written by postlogd)
    sink/, sink8/     what the two smtp-sink next hops received, one file per message
    pki/              the test PKI (Tests/fixtures/make_test_pki.py)
    milter/           milter.conf, signing.table, sender.map, milter.log

Routing: mail for @sink.test goes to an smtp-sink that announces 8BITMIME; mail for @sink8.test
goes to an `smtp-sink -8` that does not, so Postfix must down-convert 8-bit mail on the way.

Client addresses: 127.0.0.1 is the internal network (the milter's InternalHosts); an "external"
client is simulated by connecting to the second listener on 127.0.0.2 *from* 127.0.0.2 (on
Linux a loopback connection's source address is 127.0.0.1 unless the client binds another).

Every subprocess gets a timeout and every wait is bounded; `Rig.stop()` is idempotent and
kills what it started even after a failure.
"""
from __future__ import annotations

import contextlib
import dataclasses
import email
import email.policy
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
PKI_SCRIPT = REPO_ROOT / "Tests" / "fixtures" / "make_test_pki.py"

INTERNAL_ADDR = "127.0.0.1"
EXTERNAL_ADDR = "127.0.0.2"
SINK_DOMAIN = "sink.test"        # next hop announces 8BITMIME
SINK8_DOMAIN = "sink8.test"      # next hop does not announce 8BITMIME (smtp-sink -8)
SASL_REALM = "example.com"
SASL_PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}

CMD_TIMEOUT = 60        # seconds for any one helper command
DELIVERY_TIMEOUT = 45   # seconds to wait for mail to reach a sink


class RigError(RuntimeError):
    """The rig itself could not do what was asked (setup, start, a bounded wait ran out)."""


# ---------------------------------------------------------------------------------------------
# small helpers

def run(cmd: Sequence[str], *, input: bytes | None = None, timeout: float = CMD_TIMEOUT,
        env: dict | None = None, check: bool = True, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run a command with a timeout, capturing output; raise RigError with its output on failure."""
    try:
        cp = subprocess.run(list(cmd), input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise RigError(f"timed out after {timeout}s: {' '.join(cmd)}") from e
    if check and cp.returncode != 0:
        raise RigError(f"{' '.join(cmd)} exited {cp.returncode}:\n"
                       f"{cp.stdout.decode(errors='replace')}{cp.stderr.decode(errors='replace')}")
    return cp


_PORTS_HANDED_OUT: set[int] = set()
_PORTS_LOCK = threading.Lock()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = INTERNAL_ADDR) -> int:
    """A TCP port that is free on `host` now, for a server a test starts.

    Not `bind(0)`: that hands out a port from the ephemeral range, which the kernel also gives
    to outgoing connections (Postfix's, the tests' own), so a server started a moment later can
    find its port taken ("Address already in use"), and two calls can return the same port before
    either is bound. Ports here are below the ephemeral range and never handed out twice per run."""
    import random
    low, _ = _ephemeral_range()
    lowest = 20000 if low > 21000 else 1024
    ceiling = low if low > lowest + 1000 else 65535
    with _PORTS_LOCK:
        for _ in range(2000):
            port = random.randrange(lowest, ceiling)
            if port in _PORTS_HANDED_OUT:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            _PORTS_HANDED_OUT.add(port)
            return port
    raise RigError("no free TCP port below the ephemeral range")


def wait_for_port(host: str, port: int, timeout: float, what: str, alive=None) -> None:
    """Wait until something accepts TCP connections on host:port (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            pass
        if alive is not None and not alive():
            raise RigError(f"{what} exited before listening on {host}:{port}")
        if time.monotonic() > deadline:
            raise RigError(f"{what} did not listen on {host}:{port} within {timeout}s")
        time.sleep(0.1)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until it returns a true value (returned) or `timeout` runs out (RigError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RigError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def crlf(text: str | bytes) -> bytes:
    """Message text with CRLF line ends (input may use LF or CRLF)."""
    b = text.encode() if isinstance(text, str) else text
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def lf(b: bytes) -> bytes:
    return b.replace(b"\r\n", b"\n")


def write_8bitmime_multipart(path: Path, size: int) -> None:
    """What a client with 8BITMIME sends: multipart/mixed with an 8-bit UTF-8 text part (half of
    `size`) beside a base64 attachment (the other half), CRLF line ends."""
    line = "Grüße aus Köln, une crème brûlée et 0123456789 pour la ligne de texte\r\n".encode()
    b64 = (b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n")
    half = size // 2
    with open(path, "wb") as f:
        f.write(b"From: Alice <alice@example.com>\r\nTo: <bob@example.net>\r\nSubject: big 8bit multipart\r\n"
                b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mixed-1\"\r\n\r\n"
                b"--mixed-1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
        f.write(line * (half // len(line)))
        f.write(b"--mixed-1\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n"
                b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\n\r\n")
        f.write(b64 * (half // len(b64)))
        f.write(b"--mixed-1--\r\n")


def postfix_ids() -> tuple[int, int]:
    pw = pwd.getpwnam("postfix")
    return pw.pw_uid, pw.pw_gid


def milter_binary() -> Path | None:
    """$SMIME_MILTER_BIN, else .build/release/smime-milter, else .build/debug/smime-milter."""
    env = os.environ.get("SMIME_MILTER_BIN")
    if env:
        return Path(env)
    for candidate in (REPO_ROOT / ".build" / "release" / "smime-milter",
                      REPO_ROOT / ".build" / "debug" / "smime-milter"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


# ---------------------------------------------------------------------------------------------
# delivered mail

@dataclasses.dataclass
class Delivered:
    """One message as an smtp-sink received it."""
    path: Path
    client_addr: str
    mail_from: str            # the MAIL FROM argument, e.g. "<alice@example.com> BODY=8BITMIME"
    rcpts: list[str]          # RCPT TO arguments, e.g. ["<t1@sink.test>"]
    message: bytes            # the message exactly as received, LF line ends (smtp-sink writes LF)

    @property
    def header_bytes(self) -> bytes:
        return self.message.split(b"\n\n", 1)[0] + b"\n"

    @property
    def body(self) -> bytes:
        parts = self.message.split(b"\n\n", 1)
        return parts[1] if len(parts) == 2 else b""

    def parsed(self) -> email.message.Message:
        return email.message_from_bytes(self.message, policy=email.policy.compat32)

    def header_fields(self) -> list[tuple[str, str]]:
        """(name, raw value) of every top-level header field, in order."""
        return [(k, str(v)) for k, v in self.parsed().items()]


_SINK_ENVELOPE = ("X-Client-Addr:", "X-Client-Proto:", "X-Helo-Args:", "X-Mail-Args:", "X-Rcpt-Args:")


def parse_sink_dump(path: Path) -> Delivered:
    """Parse an smtp-sink -d dump file (see smtp-sink(1), DUMP FILE FORMAT): envelope records,
    a three-line Received header of smtp-sink's own, the message, and one empty line."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    i = 0
    client, mail_from, rcpts = "", "", []
    while i < len(lines) and lines[i].decode(errors="replace").startswith(_SINK_ENVELOPE):
        text = lines[i].decode(errors="replace")
        key, _, value = text.partition(": ")
        if key == "X-Client-Addr":
            client = value
        elif key == "X-Mail-Args":
            mail_from = value
        elif key == "X-Rcpt-Args":
            rcpts.append(value)
        i += 1
    if i >= len(lines) or not lines[i].startswith(b"Received: ") or b"(smtp-sink)" not in lines[i + 1]:
        raise RigError(f"{path}: not an smtp-sink dump as expected")
    i += 3  # the three-line Received header smtp-sink adds
    message = b"\n".join(lines[i:])
    if not message.endswith(b"\n\n"):
        raise RigError(f"{path}: dump is incomplete (no terminating empty line)")
    return Delivered(path, client, mail_from, rcpts, message[:-1])


class Sink:
    """An smtp-sink process that keeps every message in its own file."""

    def __init__(self, directory: Path, port: int, announce_8bitmime: bool):
        self.directory = directory
        self.port = port
        self.announce_8bitmime = announce_8bitmime
        self.proc: subprocess.Popen | None = None
        self._consumed: set[str] = set()

    def start(self) -> None:
        uid, gid = postfix_ids()
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chown(self.directory, uid, gid)
        cmd = ["smtp-sink", "-u", "postfix", "-h", "sink.test", "-4"]
        if not self.announce_8bitmime:
            cmd.append("-8")
        # "%Y%m%d%H%M%S." + a random suffix smtp-sink appends; 512 = listen backlog.
        cmd += ["-d", f"{self.directory}/%Y%m%d%H%M%S.", f"{INTERNAL_ADDR}:{self.port}", "512"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        wait_for_port(INTERNAL_ADDR, self.port, 15, "smtp-sink", alive=lambda: self.proc.poll() is None)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def all(self) -> list[Delivered]:
        """Every complete message in the folder so far (incomplete dumps are left for later)."""
        out = []
        for p in sorted(self.directory.iterdir()):
            if not p.is_file():
                continue
            try:
                out.append(parse_sink_dump(p))
            except RigError:
                continue  # still being written
        return out

    def wait_for(self, rcpt: str, count: int = 1, timeout: float = DELIVERY_TIMEOUT) -> list[Delivered]:
        """Wait (bounded) until `count` messages for RCPT `rcpt` have arrived; return them."""
        want = f"<{rcpt.lower()}>"

        def found():
            got = [d for d in self.all() if any(r.lower().startswith(want) for r in d.rcpts)]
            return got if len(got) >= count else None
        return wait_until(found, timeout, f"{count} message(s) for {rcpt} in {self.directory}")

    def for_rcpt(self, rcpt: str) -> list[Delivered]:
        want = f"<{rcpt.lower()}>"
        return [d for d in self.all() if any(r.lower().startswith(want) for r in d.rcpts)]


def wait_listening(endpoint: str, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    """Wait (bounded) until `proc` accepts connections on a milter endpoint,
    `inet:PORT@HOST` or `unix:PATH`; fail at once if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RigError(f"{what} exited with {proc.returncode}")
        try:
            if endpoint.startswith("unix:"):
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(endpoint[5:])
            else:
                port, host = endpoint[5:].split("@")
                with socket.create_connection((host, int(port)), timeout=1):
                    pass
            return
        except OSError:
            time.sleep(0.1)
    raise RigError(f"{what} is not listening on {endpoint}")


def terminate(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    """SIGTERM a process that is not in a session of its own, wait bounded, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def stop_process(proc: subprocess.Popen | None, timeout: float = 15) -> None:
    """SIGTERM the process (its own session), wait bounded, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# the milter

@dataclasses.dataclass
class MilterSettings:
    """What goes into the milter's configuration file."""
    signing_table: str | None = ("alice@example.com alice detached\n"
                                 "bob@example.com bob detached\n"
                                 "carol@example.com carol opaque\n"
                                 "newsletter@example.net news detached\n")
    # carol may use any @example.net address; nothing lets bob use alice's address.
    sender_map: str | None = "@example.net carol@example.com\n"
    internal_hosts: str = "127.0.0.1, ::1"
    mode: str = "s"
    on_error: str = "tempfail"
    digest: str = "sha256"
    extra: str = ""
    # Identity files from the test PKI (paths relative to its directory, e.g. "expiring/soon.pem")
    # copied into the CertificateDir, mode kept, each time the configuration is written.
    identities: tuple[str, ...] = ()


class Milter:
    """The smime-milter process (`smime-milter run --config FILE`), listening on inet loopback."""

    def __init__(self, binary: Path, directory: Path, cert_dir: Path, port: int):
        self.binary = binary
        self.directory = directory
        self.cert_dir = cert_dir
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.config_path = directory / "milter.conf"
        self.log_path = directory / "milter.log"
        self._log = None
        # Command words put before the milter's own (e.g. to run it in another mount namespace).
        self.launcher: list[str] = []

    def write_config(self, settings: MilterSettings) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"Socket inet:{self.port}@{INTERNAL_ADDR}",
            f"Mode {settings.mode}",
            "AuthservID test.example",
            f"InternalHosts {settings.internal_hosts}",
            f"CertificateDir {self.cert_dir}",
            f"Digest {settings.digest}",
            f"OnError {settings.on_error}",
        ]
        if settings.signing_table is not None:
            (self.directory / "signing.table").write_text(settings.signing_table)
            lines.append(f"SigningTable {self.directory / 'signing.table'}")
        if settings.sender_map is not None:
            (self.directory / "sender.map").write_text(settings.sender_map)
            lines.append(f"SenderMap {self.directory / 'sender.map'}")
        if settings.extra:
            lines.append(settings.extra.rstrip("\n"))
        for rel in settings.identities:
            shutil.copy2(self.cert_dir.parent / rel, self.cert_dir / Path(rel).name)
        self.config_path.write_text("\n".join(lines) + "\n")
        return self.config_path

    def start(self, settings: MilterSettings | None = None) -> None:
        if self.proc is not None and self.proc.poll() is None:
            raise RigError("milter already running")
        if settings is not None:
            self.write_config(settings)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*self.launcher, str(self.binary), "run", "--config", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     start_new_session=True)
        try:
            wait_for_port(INTERNAL_ADDR, self.port, 30, "smime-milter", alive=lambda: self.proc.poll() is None)
        except RigError as e:
            raise RigError(f"{e}\nmilter log:\n{self.log()}") from None

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        # Wait until the port is really closed so a following start or a "milter down" test is clean.
        def closed():
            try:
                with socket.create_connection((INTERNAL_ADDR, self.port), timeout=1):
                    return False
            except OSError:
                return True
        wait_until(closed, 15, f"milter port {self.port} to close")

    def restart(self, settings: MilterSettings | None = None) -> None:
        self.stop()
        self.start(settings)

    def reload(self) -> None:
        """SIGHUP: the milter re-reads its configuration, identities and tables."""
        if self.proc is None or self.proc.poll() is not None:
            raise RigError("milter is not running")
        os.kill(self.proc.pid, signal.SIGHUP)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def check_config(self) -> subprocess.CompletedProcess:
        return run([str(self.binary), "check-config", "--config", str(self.config_path)], check=False)


# ---------------------------------------------------------------------------------------------
# a disclaimer milter: MIMEDefang

# The filter (mimedefang-filter(5) Perl) a site with a disclaimer runs. MIMEDefang's stock
# append_text_boilerplate/append_html_boilerplate skip multipart/signed (MIMEDefang 3.3's
# find_part/collect_parts leave signed and encrypted entities alone), so a top-level client
# signature survives them. Many sites' own rules do not look: the second half appends the same
# footer with MIMEDefang's append_to_part/append_to_html_part to the first text/plain and
# text/html parts wherever they are, signed or not, which breaks the signature. Mail to a
# recipient whose local part starts with "stock-" gets only the stock helpers.
DISCLAIMER_TEXT = "Example Corp: this e-mail is confidential."
MIMEDEFANG_FILTER = f"""\
my $footer = "-- \\n{DISCLAIMER_TEXT}";
my $html = "<p>{DISCLAIMER_TEXT}</p>";

sub filter_end {{
    my($entity) = @_;
    my $text = append_text_boilerplate($entity, $footer, 0);
    my $htm = append_html_boilerplate($entity, $html, 0);
    return if grep {{ /^<?stock-/i }} @Recipients;
    if (!$text) {{ my $p = find_part($entity, "text/plain", 0); append_to_part($p, $footer) if $p; }}
    if (!$htm) {{ my $p = find_part($entity, "text/html", 0); append_to_html_part($p, $html) if $p; }}
}}

1;
"""


def mimedefang_available() -> str | None:
    """None when MIMEDefang can run here, else why not."""
    for tool in ("mimedefang", "mimedefang-multiplexor", "mimedefang.pl"):
        if shutil.which(tool) is None and not Path("/usr/bin", tool).exists():
            return f"{tool} is not installed (apt-get install mimedefang; scripts/install-deps.sh)"
    try:
        pwd.getpwnam("defang")
    except KeyError:
        return "user defang (made by the mimedefang package) does not exist"
    return None


class MIMEDefang:
    """mimedefang-multiplexor + mimedefang (the milter) on a loopback port, with
    MIMEDEFANG_FILTER; workers run as user defang in a spool directory inside the rig."""

    def __init__(self, directory: Path, port: int, filter_text: str = MIMEDEFANG_FILTER):
        self.directory = directory
        self.port = port
        self.filter_text = filter_text
        self.spool = directory / "spool"
        self.filter_path = directory / "filter.pl"
        self.mx_socket = self.spool / "mx.sock"
        self.procs: list[subprocess.Popen] = []
        self._log = None

    @property
    def postfix_socket(self) -> str:
        return f"inet:{INTERNAL_ADDR}:{self.port}"

    def start(self) -> None:
        why = mimedefang_available()
        if why:
            raise RigError(f"MIMEDefang cannot run: {why}")
        pw = pwd.getpwnam("defang")
        self.spool.mkdir(parents=True, exist_ok=True)
        os.chown(self.spool, pw.pw_uid, pw.pw_gid)
        os.chmod(self.directory, 0o755)
        self.filter_path.write_text(self.filter_text)
        os.chmod(self.filter_path, 0o644)
        run(["mimedefang.pl", "-f", str(self.filter_path), "-test"])
        env = dict(os.environ, LC_ALL="C", HOME=str(self.spool))
        self._log = open(self.directory / "mimedefang.log", "ab")
        # -D: foreground (our child, stopped by stop_process); no syslog here, so no -l.
        self.procs.append(subprocess.Popen(
            ["mimedefang-multiplexor", "-D", "-U", "defang", "-z", str(self.spool), "-s", str(self.mx_socket),
             "-f", "/usr/bin/mimedefang.pl", "-F", str(self.filter_path), "-m", "1", "-x", "4"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, env=env, start_new_session=True))
        wait_until(lambda: self.mx_socket.exists() or self.procs[0].poll() is not None, 20,
                   "mimedefang-multiplexor socket")
        if self.procs[0].poll() is not None:
            raise RigError(f"mimedefang-multiplexor exited:\n{self.log()}")
        self.procs.append(subprocess.Popen(
            ["mimedefang", "-D", "-U", "defang", "-z", str(self.spool), "-m", str(self.mx_socket),
             "-p", f"inet:{self.port}@{INTERNAL_ADDR}"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, env=env, start_new_session=True))
        try:
            wait_for_port(INTERNAL_ADDR, self.port, 20, "mimedefang", alive=lambda: self.procs[1].poll() is None)
        except RigError as e:
            raise RigError(f"{e}\n{self.log()}") from None

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs = []
        if self._log:
            self._log.close()
            self._log = None

    def log(self) -> str:
        try:
            return (self.directory / "mimedefang.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""


# ---------------------------------------------------------------------------------------------
# Postfix

MASTER_CF = """\
# Private test instance: every service unchrooted ("n" in the chroot column).
{int_addr}:{int_port} inet n - n - - smtpd
{ext_addr}:{ext_port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A private Postfix instance: `postfix -c CONFIG_DIR start|stop`."""

    def __init__(self, root: Path, *, int_port: int, ext_port: int, sink_port: int, sink8_port: int,
                 milter_socket: str | None, milters_before: Sequence[str] = ()):
        self.root = root
        self.config_dir = root / "postfix"
        self.queue_dir = root / "queue"
        self.data_dir = root / "data"
        self.sasl_dir = root / "sasl"
        self.maillog = root / "maillog"
        self.int_port = int_port
        self.ext_port = ext_port
        self.sink_port = sink_port
        self.sink8_port = sink8_port
        self.milter_socket = milter_socket
        # Milters that run before ours (a disclaimer milter), in Postfix's order.
        self.milters_before = list(milters_before)
        # More domains relayed to the 8BITMIME sink (mail to addresses of certificates the test
        # did not make, e.g. the corpus's Bob@example.com); set before start().
        self.extra_relay_domains: list[str] = []
        self.running = False

    # -- configuration ------------------------------------------------------------------------
    def main_cf(self) -> str:
        r = self.root
        milters = ", ".join(self.milters_before + ([self.milter_socket] if self.milter_socket else []))
        extra_domains = "".join(" " + d for d in self.extra_relay_domains)
        extra_transports = "".join(f", {d}=smtp:[{INTERNAL_ADDR}]:{self.sink_port}" for d in self.extra_relay_domains)
        return f"""\
compatibility_level = 3.6
config_directory = {self.config_dir}
queue_directory = {self.queue_dir}
data_directory = {self.data_dir}
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.smime-milter.test
mydomain = smime-milter.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
inet_interfaces = {INTERNAL_ADDR}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = {SINK_DOMAIN} {SINK8_DOMAIN}{extra_domains}
transport_maps = inline:{{ {SINK_DOMAIN}=smtp:[{INTERNAL_ADDR}]:{self.sink_port}, {SINK8_DOMAIN}=smtp:[{INTERNAL_ADDR}]:{self.sink8_port}{extra_transports} }}
default_transport = error:the test rig relays only to {SINK_DOMAIN} and {SINK8_DOMAIN}
smtp_dns_support_level = disabled
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_error_sleep_time = 0
smtpd_client_connection_count_limit = 0
in_flow_delay = 0
smtp_connect_timeout = 10s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
queue_run_delay = 2s
delay_warning_time = 0
maillog_file = {self.maillog}
maillog_file_prefixes = {r}
milter_default_action = tempfail
milter_protocol = 6
milter_connect_timeout = 10s
milter_command_timeout = 30s
milter_content_timeout = 60s
smtpd_milters = {milters}
non_smtpd_milters = {milters}
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {self.config_dir / 'sasl'}
smtpd_sasl_security_options = noanonymous
smtpd_sasl_local_domain =
smtpd_tls_security_level = none
smtpd_tls_auth_only = no
smtp_tls_security_level = none
"""

    def write_config(self) -> None:
        uid, gid = postfix_ids()
        for d in (self.config_dir, self.queue_dir, self.config_dir / "sasl"):
            d.mkdir(parents=True, exist_ok=True)
        for d in (self.data_dir, self.sasl_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, uid, gid)
        (self.config_dir / "main.cf").write_text(self.main_cf())
        (self.config_dir / "master.cf").write_text(MASTER_CF.format(
            int_addr=INTERNAL_ADDR, int_port=self.int_port, ext_addr=EXTERNAL_ADDR, ext_port=self.ext_port))
        sasldb = self.sasl_dir / "sasldb2"
        (self.config_dir / "sasl" / "smtpd.conf").write_text(
            "pwcheck_method: auxprop\n"
            "auxprop_plugin: sasldb\n"
            "mech_list: PLAIN LOGIN\n"
            f"sasldb_path: {sasldb}\n")
        for user, password in SASL_PASSWORDS.items():
            run(["saslpasswd2", "-f", str(sasldb), "-c", "-p", "-u", SASL_REALM, user],
                input=password.encode())
        os.chown(sasldb, uid, gid)
        os.chmod(sasldb, 0o640)

    def postconf(self, *settings: str) -> None:
        """Change main.cf settings (`name=value`) and reload the running instance."""
        run(["postconf", "-c", str(self.config_dir), "-e", *settings])
        if self.running:
            run(["postfix", "-c", str(self.config_dir), "reload"])

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.write_config()
        cp = run(["postfix", "-c", str(self.config_dir), "start"], check=False)
        if cp.returncode != 0:
            # Postfix logs its reasons to syslog or the maillog; say where to look.
            raise RigError(f"postfix start failed ({cp.returncode}): {cp.stderr.decode(errors='replace')}\n"
                           f"{self.log_tail()}")
        self.running = True
        wait_for_port(INTERNAL_ADDR, self.int_port, 30, "postfix smtpd (internal)")
        wait_for_port(EXTERNAL_ADDR, self.ext_port, 30, "postfix smtpd (external)")

    def master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if not self.config_dir.exists():
            return
        pid = self.master_pid()
        run(["postfix", "-c", str(self.config_dir), "stop"], check=False, timeout=60)
        if pid is not None:
            def gone():
                try:
                    os.kill(pid, 0)
                    return False
                except ProcessLookupError:
                    return True
            try:
                wait_until(gone, 20, "postfix master to exit")
            except RigError:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.running = False

    # -- queue and log ------------------------------------------------------------------------
    def flush(self) -> None:
        run(["postqueue", "-c", str(self.config_dir), "-f"])

    def queue_ids(self) -> list[str]:
        """Queue ids of every message in the incoming/active/deferred/hold queues (postqueue -j)."""
        import json
        cp = run(["postqueue", "-c", str(self.config_dir), "-j"])
        return [json.loads(line)["queue_id"] for line in cp.stdout.decode().splitlines() if line.strip()]

    def maildrop_files(self) -> list[str]:
        return sorted(p.name for p in (self.queue_dir / "maildrop").iterdir())

    def log_text(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# the whole rig

@dataclasses.dataclass
class SendResult:
    returncode: int
    transcript: str

    @property
    def accepted(self) -> bool:
        return self.returncode == 0


class Rig:
    """Test PKI + two sinks + private Postfix (+ the milter when a binary is given).

    >>> rig = Rig(milter_bin=milter_binary()); rig.start()
    >>> rig.send_swaks(from_="alice@example.com", to="t@sink.test", data=msg)
    >>> rig.sink.wait_for("t@sink.test")
    >>> rig.stop()
    """

    def __init__(self, *, milter_bin: Path | None = None, milter_settings: MilterSettings | None = None,
                 dead_milter: bool = False, base_dir: str | None = None, disclaimer: bool = False):
        """`milter_bin=None, dead_milter=False`: Postfix without milters (rig self-tests).
        `dead_milter=True`: Postfix points at a milter port where nothing listens.
        `disclaimer=True`: MIMEDefang with a footer filter runs before our milter
        (`smtpd_milters = <mimedefang>, <smime-milter>`)."""
        self.root = Path(tempfile.mkdtemp(prefix="smime-milter-rig.", dir=base_dir))
        os.chmod(self.root, 0o755)
        for parent in self.root.parents:
            # Postfix's daemons run as user postfix and must reach the queue below root.
            if not os.stat(parent).st_mode & 0o001:
                shutil.rmtree(self.root, ignore_errors=True)
                raise RigError(f"{parent} is not searchable by others; user postfix could not reach "
                               f"the rig's queue. Use a base directory like /tmp (TMPDIR).")
        self.milter_bin = milter_bin
        self.milter_settings = milter_settings or MilterSettings()
        self.milter_port = free_port()
        self.sink = Sink(self.root / "sink", free_port(), announce_8bitmime=True)
        self.sink8 = Sink(self.root / "sink8", free_port(), announce_8bitmime=False)
        self.pki_dir = self.root / "pki"
        uses_milter = milter_bin is not None or dead_milter
        self.disclaimer = MIMEDefang(self.root / "mimedefang", free_port()) if disclaimer else None
        self.postfix = Postfix(self.root, int_port=free_port(INTERNAL_ADDR), ext_port=free_port(EXTERNAL_ADDR),
                               sink_port=self.sink.port, sink8_port=self.sink8.port,
                               milter_socket=f"inet:{INTERNAL_ADDR}:{self.milter_port}" if uses_milter else None,
                               milters_before=[self.disclaimer.postfix_socket] if self.disclaimer else [])
        self.milter = (Milter(milter_bin, self.root / "milter", self.pki_dir / "certs", self.milter_port)
                       if milter_bin is not None else None)
        # Tests send from several threads at once; each message needs its own file.
        self._msg_counter = 0
        self._msg_counter_lock = threading.Lock()

    @property
    def trust_anchor(self) -> Path:
        return self.pki_dir / "root.pem"

    def start(self) -> "Rig":
        try:
            run(["python3", str(PKI_SCRIPT), str(self.pki_dir)], timeout=120)
            self.sink.start()
            self.sink8.start()
            if self.disclaimer is not None:
                self.disclaimer.start()
            if self.milter is not None:
                self.milter.start(self.milter_settings)
            self.postfix.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, keep: bool = False) -> None:
        """Stop everything this rig started and remove its directory (unless keep)."""
        errors = []
        for step in (self.postfix.stop,
                     (self.milter.stop if self.milter else None),
                     (self.disclaimer.stop if self.disclaimer else None),
                     self.sink.stop, self.sink8.stop):
            if step is None:
                continue
            try:
                step()
            except Exception as e:  # keep tearing down
                errors.append(e)
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise RigError(f"teardown problems: {errors}")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- senders ------------------------------------------------------------------------------
    def write_message(self, data: bytes | str, name: str | None = None, *, for_swaks: bool = False) -> Path:
        """Write a message file with CRLF line ends. swaks sends a `--data @FILE` followed by
        CRLF "." CRLF, adding a line end even when the file ends with one; `for_swaks` drops the
        file's final CRLF so that what swaks transmits is exactly `crlf(data)`."""
        with self._msg_counter_lock:
            self._msg_counter += 1
            number = self._msg_counter
        d = self.root / "outgoing"
        d.mkdir(exist_ok=True)
        p = d / (name or f"msg{number}.eml")
        b = crlf(data)
        if for_swaks and b.endswith(b"\r\n"):
            b = b[:-2]
        p.write_bytes(b)
        return p

    def send_swaks(self, *, from_: str, to: str | Iterable[str], data: bytes | str,
                   external: bool = False, auth: tuple[str, str] | None = None,
                   timeout: float = CMD_TIMEOUT) -> SendResult:
        """Send with swaks to the internal (127.0.0.1) or external (127.0.0.2, from 127.0.0.2)
        listener, optionally with SASL AUTH (user, password). Returns exit code and transcript."""
        rcpts = [to] if isinstance(to, str) else list(to)
        path = self.write_message(data, for_swaks=True)
        server = (f"{EXTERNAL_ADDR}:{self.postfix.ext_port}" if external
                  else f"{INTERNAL_ADDR}:{self.postfix.int_port}")
        cmd = ["swaks", "--server", server, "--from", from_, "--to", ",".join(rcpts),
               "--helo", "client.example", "--data", f"@{path}", "--timeout", "30"]
        if external:
            cmd += ["--local-interface", EXTERNAL_ADDR]
        if auth:
            cmd += ["--auth", "PLAIN", "--auth-user", auth[0], "--auth-password", auth[1]]
        cp = run(cmd, timeout=timeout, check=False)
        return SendResult(cp.returncode, cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace"))

    def send_smtp(self, *, from_: str, to: str | Iterable[str], data: bytes | str,
                  external: bool = False, auth: tuple[str, str] | None = None) -> None:
        """Send with Python's smtplib (exact bytes: CRLF line ends, dot-stuffing, nothing else)."""
        rcpts = [to] if isinstance(to, str) else list(to)
        host, port = ((EXTERNAL_ADDR, self.postfix.ext_port) if external
                      else (INTERNAL_ADDR, self.postfix.int_port))
        source = (EXTERNAL_ADDR, 0) if external else None
        with smtplib.SMTP(host, port, local_hostname="client.example", timeout=30,
                          source_address=source) as s:
            s.ehlo()
            if auth:
                s.login(*auth)
            s.sendmail(from_, rcpts, crlf(data))

    def send_sendmail(self, *, from_: str, to: str | Iterable[str], data: bytes | str,
                      timeout: float = CMD_TIMEOUT) -> SendResult:
        """Submit with Postfix's sendmail command against this instance (`sendmail -C DIR`)."""
        rcpts = [to] if isinstance(to, str) else list(to)
        cmd = ["sendmail", "-C", str(self.postfix.config_dir), "-f", from_, "-i", "--", *rcpts]
        cp = run(cmd, input=lf(data.encode() if isinstance(data, str) else data), timeout=timeout, check=False)
        return SendResult(cp.returncode, cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace"))

    def sendmail_wrapper(self) -> Path:
        """An executable that runs this instance's sendmail command (`sendmail -C DIR "$@"`):
        the milter's SendmailCommand, so its report mail goes through this Postfix."""
        path = self.root / "sendmail-wrapper"
        path.write_text(f'#!/bin/sh\nexec /usr/sbin/sendmail -C "{self.postfix.config_dir}" "$@"\n')
        os.chmod(path, 0o755)
        return path

    def diagnostics(self) -> str:
        """Logs worth printing when a test fails."""
        out = [f"--- postfix maillog ({self.postfix.maillog}) ---", self.postfix.log_tail(60)]
        if self.milter:
            out += ["--- milter log ---", "\n".join(self.milter.log().splitlines()[-40:])]
        if self.disclaimer:
            out += ["--- mimedefang log ---", "\n".join(self.disclaimer.log().splitlines()[-20:])]
        return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# verification

@dataclasses.dataclass
class Verification:
    ok: bool
    output: str           # openssl's stderr ("Verification successful" on success)
    content: bytes        # the signed content (the MIME entity that was signed)
    signer_pem: bytes     # the signer certificate openssl found


def openssl_verify(message: bytes, ca_file: Path, workdir: Path) -> Verification:
    """`openssl cms -verify -in MSG -CAfile ROOT -out CONTENT -signer SIGNER` on an S/MIME message
    (multipart/signed or application/pkcs7-mime signed-data)."""
    workdir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=workdir, suffix=".eml")
    with os.fdopen(fd, "wb") as f:
        f.write(message)
    content, signer = tmp + ".content", tmp + ".signer.pem"
    cp = run(["openssl", "cms", "-verify", "-in", tmp, "-CAfile", str(ca_file), "-out", content,
              "-signer", signer], check=False)
    out = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    ok = cp.returncode == 0 and "Verification successful" in out
    c = Path(content).read_bytes() if os.path.exists(content) else b""
    s = Path(signer).read_bytes() if os.path.exists(signer) else b""
    return Verification(ok, out, c, s)


def signer_info(signer_pem: bytes) -> tuple[list[str], str]:
    """(e-mail addresses in the certificate, key type 'RSA'/'EC') of a PEM certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID
    cert = x509.load_pem_x509_certificate(signer_pem)
    emails = []
    try:
        emails += cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.RFC822Name)
    except x509.ExtensionNotFound:
        pass
    emails += [a.value for a in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]
    key = cert.public_key()
    kind = "RSA" if isinstance(key, rsa.RSAPublicKey) else "EC" if isinstance(key, ec.EllipticCurvePublicKey) else "?"
    return [e.lower() for e in emails], kind


def openssl_sign(content: bytes, signer_pem: Path, workdir: Path, key: Path | None = None,
                 certfile: Path | None = None, opaque: bool = False) -> bytes:
    """An S/MIME entity (MIME-Version, Content-Type, body) signed by `openssl cms -sign`:
    detached multipart/signed, or opaque application/pkcs7-mime. `content` is the MIME entity
    to sign (its Content-* fields, an empty line, the body)."""
    workdir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=workdir, suffix=".txt")
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    cmd = ["openssl", "cms", "-sign", "-in", tmp, "-signer", str(signer_pem), "-md", "sha256"]
    if key is not None:
        cmd += ["-inkey", str(key)]
    if certfile is not None:
        cmd += ["-certfile", str(certfile)]
    if opaque:
        cmd += ["-nodetach"]
    return run(cmd).stdout


# ---------------------------------------------------------------------------------------------
# the signature as other mail clients' libraries see it (NSS = Thunderbird, gpgsm = GnuPG)

def signature_parts(message: bytes) -> tuple[bytes | None, bytes]:
    """(signed content with CRLF line ends, DER SignedData) of a delivered S/MIME message:
    for multipart/signed the first part's exact bytes and the decoded second part, for
    application/pkcs7-mime (None, the decoded body)."""
    import base64
    msg = email.message_from_bytes(lf(message), policy=email.policy.compat32)
    head, _, body = lf(message).partition(b"\n\n")
    if msg.get_content_type() != "multipart/signed":
        return None, base64.b64decode(body)
    boundary = msg.get_param("boundary")
    if not boundary:
        raise RigError("multipart/signed without a boundary")
    delimiter = b"\n--" + boundary.encode()
    text = b"\n" + body
    first = text.index(delimiter)
    start = text.index(b"\n", first + len(delimiter)) + 1
    end = text.index(delimiter, start)
    content = text[start:end]
    sig_part = text[end + len(delimiter):]
    sig_part = sig_part[sig_part.index(b"\n") + 1:]
    sig_end = sig_part.index(delimiter)
    sig_entity = sig_part[:sig_end]
    sig_body = sig_entity.partition(b"\n\n")[2]
    return crlf(content), base64.b64decode(sig_body)


def nss_verify(message: bytes, ca_file: Path, workdir: Path) -> tuple[bool, str]:
    """NSS's `cmsutil -D -h 1` with a throw-away database trusting the root. cmsutil exits 0
    even for a bad signature; `signer0.status=GoodSignature` is what counts."""
    content, der = signature_parts(message)
    d = Path(tempfile.mkdtemp(prefix="nss.", dir=workdir))
    db = f"sql:{d}"
    run(["certutil", "-N", "--empty-password", "-d", db])
    run(["certutil", "-A", "-n", "test-root", "-t", "C,C,C", "-i", str(ca_file), "-d", db])
    (d / "sig.der").write_bytes(der)
    cmd = ["cmsutil", "-D", "-i", str(d / "sig.der"), "-d", db, "-h", "1", "-o", str(d / "out")]
    if content is not None:
        (d / "content").write_bytes(content)
        cmd += ["-c", str(d / "content")]
    cp = run(cmd, check=False)
    out = (d / "out").read_bytes().decode(errors="replace") if (d / "out").exists() else ""
    log = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace") + out
    return cp.returncode == 0 and "signer0.status=GoodSignature;" in log and "nsigners=1;" in log, log


@contextlib.contextmanager
def gnupg_home() -> Iterator[tuple[Path, dict]]:
    """A new, empty GnuPG home (mode 0700) and the environment naming it (GNUPGHOME); on leaving,
    the home's gpg-agent is killed and the home removed.

    The home is a short directory under the system's tmp: gpg-agent puts its sockets in it (the
    longest, S.gpg-agent.browser), and under a pytest-xdist worker's tmp_path the socket name
    passes the 107 bytes a unix socket path may have, so gpg-agent exits with status 2."""
    home = Path(tempfile.mkdtemp(prefix="gnupg."))
    env = dict(os.environ, GNUPGHOME=str(home))
    try:
        yield home, env
    finally:
        run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False, timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def gpgsm_verify(message: bytes, ca_file: Path, workdir: Path) -> tuple[bool, str]:
    """GnuPG's `gpgsm --verify` with a throw-away home that trusts the root (CRL checks off)."""
    content, der = signature_parts(message)
    d = Path(tempfile.mkdtemp(prefix="gpgsm.", dir=workdir))
    with gnupg_home() as (home, env):
        (home / "gpgsm.conf").write_text("disable-crl-checks\n")
        run(["gpgsm", "--batch", "--import", str(ca_file)], env=env)
        listing = run(["gpgsm", "--with-colons", "--list-keys"], env=env).stdout.decode()
        fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        (home / "trustlist.txt").write_text(f"{fpr} S\n")
        (d / "sig.der").write_bytes(der)
        if content is not None:
            (d / "content").write_bytes(content)
            cmd = ["gpgsm", "--batch", "--status-fd", "1", "--verify", str(d / "sig.der"), str(d / "content")]
        else:
            cmd = ["gpgsm", "--batch", "--status-fd", "1", "--output", str(d / "out"), "--verify", str(d / "sig.der")]
        cp = run(cmd, env=env, check=False)
        out, err = cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace")
        return cp.returncode == 0 and "Good signature" in err and "[GNUPG:] TRUST_FULLY" in out, out + err


ENROL_SCRIPT = """#!/usr/bin/env python3
# EnrollCommand for the test: the request on stdin, the chain (leaf, intermediate) on stdout,
# issued by the test PKI's intermediate for the request's key and rfc822Name.
import importlib.util, sys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
spec = importlib.util.spec_from_file_location("pki", sys.argv[1])
pki = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pki)
csr = x509.load_pem_x509_csr(sys.stdin.buffer.read())
assert csr.is_signature_valid, "the request's signature does not verify"
emails = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.RFC822Name)
inter = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
inter_key = serialization.load_pem_private_key(open(sys.argv[3], "rb").read(), None)
class Public:
    def public_key(self):
        return csr.public_key()
cert = pki.leaf(emails, Public(), inter, inter_key)
sys.stdout.buffer.write(pki.pem(cert) + pki.pem(inter))
"""


def enrol_command(path: Path, pki_dir: Path) -> str:
    """An EnrollCommand (written to `path`) that issues every request from `pki_dir`'s
    intermediate CA: the request's key and rfc822Name, the chain on standard output."""
    path.write_text(ENROL_SCRIPT)
    os.chmod(path, 0o755)
    return f"{path} {PKI_SCRIPT} {pki_dir / 'intermediate.pem'} {pki_dir / 'intermediate.key'}"
