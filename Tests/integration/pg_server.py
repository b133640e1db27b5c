# SPDX-License-Identifier: Apache-2.0
"""A private PostgreSQL 15 server for the cluster tests and `make bench`: initdb as user
postgres in a directory of its own, listening on 127.0.0.1 only; optionally TLS (a server
certificate made here with openssl) and password (scram-sha-256) authentication."""
from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def available() -> bool:
    return (PG_BIN / "initdb").exists()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (see rig.free_port: below the ephemeral range)."""
    import rig
    return rig.free_port("127.0.0.1")


def _run(cmd: list[str], timeout: float = 120, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    cp = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
    if check and cp.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {cp.returncode}: {cp.stderr.decode(errors='replace')[-800:]}")
    return cp


class PostgreSQL:
    """One PostgreSQL server run as user postgres in a directory of its own, on 127.0.0.1."""

    def __init__(self, base: Path, name: str):
        self.dir = base / name
        self.data = self.dir / "data"
        self.port = free_port()
        self.log = self.dir / "server.log"

    def _as_postgres(self, *cmd: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        return _run(["runuser", "-u", "postgres", "--", *cmd], timeout=timeout, check=check)

    def init(self) -> "PostgreSQL":
        self.dir.mkdir(parents=True)
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        return self

    def standby_of(self, primary: "PostgreSQL") -> "PostgreSQL":
        self.dir.mkdir(parents=True)
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                          "-D", str(self.data), "-R", "-X", "stream")
        return self

    def enable_tls(self, pki: Path, password_user: str, password: str) -> Path:
        """A CA and a server certificate for 127.0.0.1 and localhost (made here by openssl),
        ssl=on, and pg_hba: `password_user` only over TLS with scram-sha-256; postgres (the
        test's own psql) stays trusted. Returns the CA file. Call before start()."""
        pki.mkdir(parents=True, exist_ok=True)
        ca_key, ca, key, csr, crt = (pki / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.crt"))
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
              "-days", "2", "-subj", "/CN=smime-milter test database CA",
              "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
              "-subj", "/CN=localhost"])
        ext = pki / "server.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
              "-days", "2", "-out", str(crt), "-extfile", str(ext)])
        for src, name in ((crt, "server.crt"), (key, "server.key")):
            dst = self.data / name
            shutil.copyfile(src, dst)
            shutil.chown(dst, "postgres", "postgres")
            dst.chmod(0o600)
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                    "password_encryption = 'scram-sha-256'\n")
        (self.data / "pg_hba.conf").write_text(
            "local all postgres trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host replication postgres 127.0.0.1/32 trust\n"
            f"hostssl all {password_user} 127.0.0.1/32 scram-sha-256\n"
            f"hostnossl all {password_user} 127.0.0.1/32 reject\n")
        self._pending_user = (password_user, password)
        return ca

    def start(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                          "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")
        pending = getattr(self, "_pending_user", None)
        if pending:
            user, password = pending
            self.sql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'", db="postgres")
            self._pending_user = None

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def promote(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "promote")

    def sql(self, statement: str, db: str = "smime") -> str:
        return _run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db, "-At", "-c", statement]
                    ).stdout.decode().strip()
