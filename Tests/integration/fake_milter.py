#!/usr/bin/env python3
"""A deliberately small stand-in for smime-milter, used only to prove the integration tests.

    SMIME_MILTER_BIN=Tests/integration/fake_milter.py python3 -m pytest Tests/integration

It speaks the milter protocol (version 6) itself and signs with the `openssl cms` command, with a
crude version of the signing policy (InternalHosts, {auth_authen}, SenderMap, SigningTable).
It exists so that the tests can be run, and seen to pass and to fail, before and independently
of the real milter: `FAKE_MILTER_BREAK=no7bit` signs 8-bit content as it is (test 5 must then
fail), `FAKE_MILTER_BREAK=resign` signs already-signed mail again (test 8 must then fail).
It is not the product and makes no claim to be robust: single-part text bodies only.
"""
from __future__ import annotations

import base64
import ipaddress
import os
import quopri
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

BREAK = os.environ.get("FAKE_MILTER_BREAK", "")


def load_config(path: str) -> dict:
    conf = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            conf[key.lower()] = value.strip()
    return conf


class Policy:
    def __init__(self, conf: dict, workdir: Path):
        self.internal = [ipaddress.ip_network(x.strip()) for x in conf.get("internalhosts", "127.0.0.1").split(",")]
        self.certdir = Path(conf["certificatedir"])
        self.table = []
        if "signingtable" in conf:
            for line in Path(conf["signingtable"]).read_text().splitlines():
                f = line.split()
                if f:
                    self.table.append((f[0].lower(), f[1], f[2] if len(f) > 2 else "detached"))
        self.sender_map = {}
        if "sendermap" in conf:
            for line in Path(conf["sendermap"]).read_text().splitlines():
                f = line.split(None, 1)
                if len(f) == 2:
                    self.sender_map[f[0].lower()] = [x.strip().lower() for x in f[1].split(",")]
        # Inside the rig's directory (next to the config), so the rig's teardown removes it.
        self.tmp = Path(tempfile.mkdtemp(prefix="fake-milter.", dir=workdir))
        self.pem = {}

    def identity_pem(self, name: str) -> Path:
        if name in self.pem:
            return self.pem[name]
        p12 = self.certdir / f"{name}.p12"
        out = self.tmp / f"{name}.pem"
        if p12.exists():
            pw = (self.certdir / f"{name}.pass").read_text().strip()
            subprocess.run(["openssl", "pkcs12", "-in", str(p12), "-passin", f"pass:{pw}", "-nodes", "-out", str(out)],
                           check=True, capture_output=True, timeout=30)
        else:
            data = (self.certdir / f"{name}.pem").read_bytes()
            key = self.certdir / f"{name}.key"
            if key.exists():
                data += b"\n" + key.read_bytes()
            out.write_bytes(data)
        self.pem[name] = out
        return out

    def allowed(self, login: str | None, envelope: str, from_addr: str) -> bool:
        who = (login or envelope).lower()
        if who == from_addr:
            return True
        dom = "@" + from_addr.split("@")[-1]
        return who in self.sender_map.get(from_addr, []) or who in self.sender_map.get(dom, [])


def addr_of(value: str) -> list[str]:
    import email.utils
    return [a.lower() for _, a in email.utils.getaddresses([value]) if a]


def sign(policy: Policy, ctx: dict) -> list[tuple] | None:
    """The edits for one message, or None to leave it alone."""
    headers = ctx["headers"]
    client = ctx.get("addr")
    login = ctx.get("auth")
    internal = client is None or any(ipaddress.ip_address(client) in n for n in policy.internal)
    if not (internal or login):
        return None
    froms = [h for h in headers if h[0].lower() == "from"]
    if len(froms) != 1 or len(addr_of(froms[0][1])) != 1:
        return None
    from_addr = addr_of(froms[0][1])[0]
    ctype = next((v for n, v in headers if n.lower() == "content-type"), "text/plain")
    if BREAK != "resign" and ctype.strip().lower().startswith(("multipart/signed", "application/pkcs7-mime")):
        return None
    if not policy.allowed(login, ctx["envelope"].strip("<>"), from_addr):
        return None
    entry = next(((ident, form) for pat, ident, form in policy.table if pat == from_addr), None)
    if entry is None:
        return None
    ident, form = entry
    body = ctx["body"]
    content_fields = [(n, v) for n, v in headers if n.lower().startswith("content-")]
    if BREAK != "no7bit" and any(b > 0x7F for b in body):
        body = quopri.encodestring(body.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
        content_fields = [(n, v) for n, v in content_fields if n.lower() != "content-transfer-encoding"]
        content_fields.append(("Content-Transfer-Encoding", " quoted-printable"))
    if not content_fields:
        content_fields = [("Content-Type", " text/plain")]
    entity = b"".join(f"{n}:{v}\r\n".replace("\n", "\r\n").replace("\r\r", "\r").encode() for n, v in content_fields)
    entity += b"\r\n" + body
    with tempfile.NamedTemporaryFile(dir=policy.tmp) as f:
        f.write(entity)
        f.flush()
        cmd = ["openssl", "cms", "-sign", "-binary", "-in", f.name, "-signer", str(policy.identity_pem(ident)),
               "-certfile", str(policy.certdir.parent / "intermediate.pem"), "-md", "sha256", "-outform", "DER"]
        if form == "opaque":
            cmd.append("-nodetach")
        der = subprocess.run(cmd, check=True, capture_output=True, timeout=30).stdout
    b64 = base64.encodebytes(der).replace(b"\n", b"\r\n")
    edits = []
    counts = {}
    for n, _ in headers:  # delete the Content-* fields (last occurrence first is not needed: index per name)
        counts[n.lower()] = counts.get(n.lower(), 0) + 1
    for n, v in headers:
        if n.lower().startswith("content-"):
            edits.append(("m", n, 1, ""))  # always the first remaining occurrence
    if not any(n.lower() == "mime-version" for n, _ in headers):
        edits.append(("h", "MIME-Version", "1.0"))
    if form == "opaque":
        edits.append(("h", "Content-Type", 'application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"'))
        edits.append(("h", "Content-Transfer-Encoding", "base64"))
        edits.append(("b", b64))
    else:
        boundary = "----fake-milter-" + os.urandom(8).hex()
        edits.append(("h", "Content-Type", f'multipart/signed; protocol="application/pkcs7-signature";\n\t'
                                           f'micalg=sha-256; boundary="{boundary}"'))
        new = (b"This is an S/MIME signed message\r\n\r\n--" + boundary.encode() + b"\r\n" + entity +
               b"\r\n--" + boundary.encode() + b"\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
               b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7s\r\n\r\n" +
               b64 + b"\r\n--" + boundary.encode() + b"--\r\n")
        edits.append(("b", new))
    print(f"fake-milter: from=<{from_addr}> decision=signed identity={ident} form={form}", file=sys.stderr, flush=True)
    return edits


def packet(cmd: bytes, data: bytes = b"") -> bytes:
    return struct.pack("!I", len(data) + 1) + cmd + data


def serve(conn: socket.socket, policy: Policy) -> None:
    ctx = {"headers": [], "body": b""}
    f = conn.makefile("rb")
    while True:
        hdr = f.read(4)
        if len(hdr) < 4:
            return
        (n,) = struct.unpack("!I", hdr)
        data = f.read(n)
        cmd, data = data[:1], data[1:]
        if cmd == b"O":
            conn.sendall(packet(b"O", struct.pack("!III", 6, 0x01 | 0x10 | 0x02, 0)))
        elif cmd == b"D":
            parts = data[1:].split(b"\0")
            for k, v in zip(parts[0::2], parts[1::2]):
                if k.decode() in ("{auth_authen}",) and v:
                    ctx["auth"] = v.decode()
        elif cmd == b"C":
            name, _, rest = data.partition(b"\0")
            family = rest[:1]
            ctx["addr"] = rest[3:].rstrip(b"\0").decode() if family in (b"4", b"6") else None
            conn.sendall(packet(b"c"))
        elif cmd == b"M":
            ctx["envelope"] = data.split(b"\0")[0].decode()
            ctx["headers"], ctx["body"] = [], b""
            conn.sendall(packet(b"c"))
        elif cmd == b"L":
            name, value = data.split(b"\0")[:2]
            ctx["headers"].append((name.decode(), " " + value.decode("utf-8", "surrogateescape")))
            conn.sendall(packet(b"c"))
        elif cmd == b"B":
            ctx["body"] += data
            conn.sendall(packet(b"c"))
        elif cmd == b"E":
            if data:
                ctx["body"] += data
            try:
                edits = sign(policy, ctx)
            except Exception as e:  # noqa: BLE001
                print(f"fake-milter: error {e}", file=sys.stderr, flush=True)
                conn.sendall(packet(b"t"))
                continue
            for e in edits or []:
                if e[0] == "m":
                    conn.sendall(packet(b"m", struct.pack("!I", e[2]) + e[1].encode() + b"\0" + e[3].encode() + b"\0"))
                elif e[0] == "h":
                    conn.sendall(packet(b"h", e[1].encode() + b"\0" + e[2].encode() + b"\0"))
                elif e[0] == "b":
                    for i in range(0, len(e[1]), 65535):
                        conn.sendall(packet(b"b", e[1][i:i + 65535]))
            conn.sendall(packet(b"a"))
            ctx["headers"], ctx["body"] = [], b""
            ctx.pop("auth", None)
        elif cmd in (b"A",):
            ctx["headers"], ctx["body"] = [], b""
        elif cmd in (b"Q",):
            return
        elif cmd == b"K":
            ctx = {"headers": [], "body": b""}
        else:  # H, R, T, N, U and anything else: continue
            conn.sendall(packet(b"c"))


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[1] != "run" or sys.argv[2] != "--config":
        sys.exit("usage: fake_milter.py run --config FILE")
    conf = load_config(sys.argv[3])
    policy = Policy(conf, Path(sys.argv[3]).resolve().parent)
    port, _, host = conf["socket"].removeprefix("inet:").partition("@")
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(64)
    print(f"fake-milter: listening on {host}:{port}", file=sys.stderr, flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=lambda c=conn: (serve(c, policy), c.close()), daemon=True).start()


if __name__ == "__main__":
    main()
