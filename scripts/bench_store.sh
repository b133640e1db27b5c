#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Quick measurement: outbound decisions (sign + encrypt to one encrypt recipient) per second, SQLite vs PostgreSQL store.
set -e
REPO=$(cd "$(dirname "$0")/.." && pwd); BUILD=${BUILD:-debug}
W=/tmp/pgbench; rm -rf $W; mkdir -p $W; chmod 755 $W; cd $W
B=$REPO/.build/$BUILD/smime-milter; L=$REPO/.build/$BUILD/milter-load
python3 $REPO/Tests/fixtures/make_test_pki.py pki >/dev/null
python3 - "$REPO/Tests/integration" <<'PY'
import sys; sys.path.insert(0, sys.argv[1])
from pathlib import Path
from test_encryption import make_recipient
p = make_recipient(Path("pki"), "erin@sink.test", Path("erin.pem"))
pem = p.read_bytes(); Path("erin.crt").write_bytes(pem[:pem.index(b"-----BEGIN PRIVATE KEY-----")])
PY
mkdir pg; chown postgres pg
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D $W/pg/data -A trust -U postgres >/dev/null
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D $W/pg/data -l $W/pg/log -w -o "-p 55433 -k $W/pg -c listen_addresses=127.0.0.1" start >/dev/null
psql -h 127.0.0.1 -p 55433 -U postgres -d postgres -c "CREATE DATABASE smime" >/dev/null
echo "alice@example.com alice detached" > signing.table
echo "erin@sink.test encrypt" > enc.table
for store in "sqlite:$W/store.sqlite" "postgresql://postgres@127.0.0.1:55433/smime"; do
  cat > m.conf <<C
Socket inet:55999@127.0.0.1
Mode s
AuthservID test.example
InternalHosts 127.0.0.1
CertificateDir $W/pki/certs
SigningTable $W/signing.table
TrustAnchors $W/pki/root.pem
EncryptionTable $W/enc.table
CertificateStore $store
C
  $B store migrate -c m.conf >/dev/null
  $B certs --recipients -c m.conf import erin.crt >/dev/null
  $B run --config m.conf > milter.log 2>&1 &
  PID=$!
  for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/55999) 2>/dev/null && break; sleep 0.2; done
  echo "== $store"
  $L --socket inet:55999@127.0.0.1 --mode sign-rsa --concurrency 8 --seconds 15 --recipient erin@sink.test --save $W/saved-${store%%:*} --save-count 1 2>&1 | grep -iE "msg/s|messages|error" | head -4
  grep -c "application/pkcs7-mime" $W/saved-${store%%:*}/*.eml || true
  kill $PID; wait $PID || true
done
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D $W/pg/data -m fast -w stop >/dev/null
