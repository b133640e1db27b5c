# SPDX-License-Identifier: Apache-2.0
"""`make bench`: outbound decisions per second with the PostgreSQL certificate store beside
SQLite (issue 21), a job of its own (run by scripts/bench.py).

The same milter (Mode s, RSA-2048 signing, one `encrypt` recipient whose certificate is in the
store) twice: `CertificateStore sqlite:PATH`, then `CertificateStore postgresql://...` against a
private PostgreSQL 15 started here (tests/integration/pg_server.py: initdb in the work directory,
loopback only). milter-load at concurrency 8 signs and encrypts every message; one saved result
of each is checked to be application/pkcs7-mime. Rows `store-sqlite-c8` and `store-postgresql-c8`.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pg_server
from bench_run import MilterProcess, log

RCPT = "erin@sink.test"
LABELS = {"sqlite": "store-sqlite-c8", "postgresql": "store-postgresql-c8"}


class StoreMilterProcess(MilterProcess):
    """The bench milter, signing and encrypting to one recipient from a given store."""

    store = ""

    def config_text(self, mode: str) -> str:
        (self.dir / "enc.table").write_text(f"{RCPT} encrypt\n")
        return (super().config_text(mode) + f"TrustAnchors {self.pki / 'root.pem'}\n"
                f"EncryptionTable {self.dir / 'enc.table'}\nCertificateStore {self.store}\n")


def recipient_certificate(pki: Path, work: Path) -> Path:
    from test_encryption import make_recipient
    pem = make_recipient(pki, RCPT, work / "erin.pem").read_bytes()
    crt = work / "erin.crt"
    crt.write_bytes(pem[:pem.index(b"-----BEGIN PRIVATE KEY-----")])
    return crt


def run(bench, pki: Path) -> None:
    """Adds the rows `store-sqlite-c8` and `store-postgresql-c8` to `bench.rows`."""
    if not pg_server.available():
        bench.notes.append("PostgreSQL store rows not measured: PostgreSQL 15 is not installed (scripts/install-deps.sh)")
        return
    work = bench.work / "store"
    work.mkdir()
    work.chmod(0o755)
    crt = recipient_certificate(pki, work)
    pg = pg_server.PostgreSQL(work, "pg").init()
    pg.start()
    try:
        pg.sql("CREATE DATABASE smime", db="postgres")
        stores = {"sqlite": f"sqlite:{work / 'store.sqlite'}",
                  "postgresql": f"postgresql://postgres@127.0.0.1:{pg.port}/smime"}
        for kind, store in stores.items():
            milter = StoreMilterProcess(bench.milter_bin, work / kind, pki, "inet", "s")
            milter.store = store
            conf = milter.dir / "milter.conf"
            conf.write_text(milter.config_text("s"))
            for cmd in (["store", "migrate", "--config", str(conf)],
                        ["certs", "--recipients", "-c", str(conf), "import", str(crt)]):
                cp = subprocess.run([str(bench.milter_bin), *cmd], capture_output=True, timeout=120)
                if cp.returncode != 0:
                    bench.errors.append(f"{LABELS[kind]}: {' '.join(cmd[:2])}: {cp.stderr.decode(errors='replace')[-300:]}")
            saved = work / f"saved-{kind}"
            try:
                milter.start()
                bench.load(LABELS[kind], milter.endpoint, "sign-rsa", 8, seconds=bench.duration, pid=milter.pid,
                           extra=["--recipient", RCPT, "--save", str(saved), "--save-count", "1"])
            finally:
                milter.stop()
            files = sorted(saved.glob("*.eml"))
            if not files or b"application/pkcs7-mime" not in files[0].read_bytes():
                bench.errors.append(f"{LABELS[kind]}: the saved result is not encrypted")
    finally:
        pg.stop()
    log("store rows done")


def ratio(bench) -> tuple[dict, dict, float] | None:
    sq, pq = bench.row(LABELS["sqlite"]), bench.row(LABELS["postgresql"])
    if not sq or not pq or float(sq["msg_per_s"]) <= 0:
        return None
    return sq, pq, float(pq["msg_per_s"]) / float(sq["msg_per_s"])


def target(bench):
    """(name, measured, ratio, ok) for the targets table, or None when not measured."""
    r = ratio(bench)
    if r is None:
        return None
    sq, pq, x = r
    return ("Outbound decisions (sign + encrypt, c8) with the PostgreSQL store: >= 90% of SQLite (issue 21)",
            f"PostgreSQL {pq['msg_per_s']} msg/s, SQLite {sq['msg_per_s']} msg/s", f"{x:.0%}", x >= 0.9)


def section(bench) -> list[str]:
    """The markdown section of the store rows, or nothing when none ran."""
    r = ratio(bench)
    if r is None:
        return []
    sq, pq, x = r
    return ["## Certificate store: PostgreSQL beside SQLite\n",
            "Outbound decisions per second: milter-load at concurrency 8 over inet, each 2 KB message signed "
            "(RSA-2048) and encrypted to one `encrypt` recipient whose certificate the milter looks up in its "
            "`CertificateStore`: a local SQLite file, then a private PostgreSQL 15 on loopback (started by the "
            "run; the milter's read cache, invalidated by LISTEN/NOTIFY, keeps the database off the per-message "
            "path). One saved result of each run is checked to be application/pkcs7-mime.\n",
            "| store | msg/s | p50 ms | p99 ms | milter CPU % | errors |", "|---|---|---|---|---|---|",
            *(f"| {name} | {row['msg_per_s']} | {row['p50_ms']} | {row['p99_ms']} | {row['milter_cpu_pct']} | "
              f"{row['errors']} |" for name, row in (("SQLite", sq), ("PostgreSQL", pq))),
            f"\nPostgreSQL / SQLite: {x:.0%} (aim: at least 90%).\n"]
