#!/usr/bin/env bash
# Runs every cargo-fuzz target for a short time (default 30 s each), starting
# from the checked-in corpus. New inputs go to a scratch directory, so the
# working tree is left as it was; a failure is saved under fuzz/artifacts/<t>/
# and makes this script exit non-zero.
#
# Usage: bash fuzz/smoke.sh [SECONDS_PER_TARGET]
#
# Uses the default toolchain without a sanitizer (`-s none`): soket forbids
# unsafe code, and this needs no nightly. For ASan, run cargo +nightly fuzz
# by hand (fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-30}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build -s none
for target in $(cargo fuzz list); do
    mkdir -p "$WORK/$target"
    extra=()
    case "$target" in
        connection) extra=(-max_len=4096 -dict=fuzz/dict/connection.dict) ;;
        handshake) extra=(-dict=fuzz/dict/http.dict) ;;
        json_events | socketio_packets | sockjs_bodies | cluster_wire) extra=(-dict=fuzz/dict/json.dict) ;;
        stomp_frames) extra=(-dict=fuzz/dict/stomp.dict) ;;
    esac
    echo "--- fuzz $target for ${SECS}s"
    log="$WORK/$target.log"
    status=0
    cargo fuzz run -s none "$target" "$WORK/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" >"$log" 2>&1 ||
        status=$?
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec)' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 80 "$log" >&2
        echo "fuzz target $target failed (exit $status); reproducer in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
echo "fuzz smoke: all targets ran ${SECS}s without a finding"
