#!/usr/bin/env bash
# CI for the packaging (docs/DEPLOY.md): the Docker image builds and serves
# /healthz when a Docker or Podman engine answers here; the systemd unit
# passes `systemd-analyze verify` (systemd installed from apt when missing).
# Skips, saying so, only what cannot run here.
# Usage: bash deploy/check.sh path/to/soket   (the built binary, for the unit's ExecStart)
set -euo pipefail
cd "$(dirname "$0")/.."
BINARY="$(realpath "${1:?usage: deploy/check.sh path/to/soket}")"
ran=0

healthz() { # URL: true once it answers 200 "ok" (bounded)
  for _ in $(seq 1 50); do
    if python3 - "$1" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 and r.read() == b"ok\n" else 1)
PY
    sleep 0.2
  done
  return 1
}

ENGINE=""
for candidate in docker podman; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" info >/dev/null 2>&1; then
    ENGINE="$candidate"
    break
  fi
done
if [ -n "$ENGINE" ]; then
  echo "$ENGINE: building the image (Dockerfile)"
  "$ENGINE" build -t soket:ci .
  CID="$("$ENGINE" run -d --rm -p 127.0.0.1::8888 soket:ci)"
  trap '"$ENGINE" rm -f "$CID" >/dev/null 2>&1 || true' EXIT
  HOSTPORT="$("$ENGINE" port "$CID" 8888/tcp | head -n1)"
  if ! healthz "http://$HOSTPORT/healthz"; then
    "$ENGINE" logs "$CID" >&2 || true
    echo "the image did not answer /healthz on $HOSTPORT" >&2
    exit 1
  fi
  "$ENGINE" stop -t 10 "$CID" >/dev/null
  trap - EXIT
  echo "$ENGINE: the image serves /healthz, and stops on SIGTERM"
  ran=1
else
  echo "SKIP image: no Docker or Podman engine answers here (docker/podman info)"
fi

if ! command -v systemd-analyze >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null) || true
fi
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify checks that ExecStart's program exists: the copy runs the built binary.
  UNIT_DIR="$(mktemp -d)"
  sed "s|^ExecStart=/usr/local/bin/soket|ExecStart=$BINARY|" deploy/soket.service >"$UNIT_DIR/soket.service"
  grep -q "^ExecStart=$BINARY " "$UNIT_DIR/soket.service" || { echo "deploy/soket.service: no ExecStart=/usr/local/bin/soket" >&2; exit 1; }
  # verify exits 0 on a directive it ignores (a typo, a bad value): any output fails.
  OUT="$(systemd-analyze verify "$UNIT_DIR/soket.service" 2>&1)" || { echo "$OUT" >&2; exit 1; }
  if [ -n "$OUT" ]; then
    echo "$OUT" >&2
    echo "systemd-analyze verify complained about deploy/soket.service" >&2
    exit 1
  fi
  # The cluster template, as one instance.
  sed "s|^ExecStart=/usr/local/bin/soket|ExecStart=$BINARY|" 'deploy/soket@.service' >"$UNIT_DIR/soket@8881.service"
  OUT="$(systemd-analyze verify "$UNIT_DIR/soket@8881.service" 2>&1)" || { echo "$OUT" >&2; exit 1; }
  if [ -n "$OUT" ]; then
    echo "$OUT" >&2
    echo "systemd-analyze verify complained about deploy/soket@.service" >&2
    exit 1
  fi
  rm -rf "$UNIT_DIR"
  echo "systemd-analyze verify: deploy/soket.service and deploy/soket@.service are clean ($(systemd-analyze --version | head -n1))"
  ran=1
else
  echo "SKIP unit: systemd-analyze is not installed and could not be installed"
fi
if ! command -v haproxy >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null) || true
fi
if command -v haproxy >/dev/null 2>&1; then
  haproxy -c -q -f deploy/cluster/haproxy.cfg
  echo "haproxy -c: deploy/cluster/haproxy.cfg is valid ($(haproxy -v | head -n1))"
else
  echo "SKIP haproxy.cfg: haproxy is not installed and could not be installed"
fi

[ "$ran" = 1 ] || echo "SKIP packaging: neither a container engine nor systemd-analyze is available here"
