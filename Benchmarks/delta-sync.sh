#!/usr/bin/env bash
# Delta sync (issue 14): `ferry send --sync` against rsync's delta algorithm on the same file
# pair, side by side, over a veth pair between two network namespaces shaped with tbf to
# 1 Gbit/s in both directions.
#   1. a SIZE-byte disk (default 4 GiB, random bytes) of which 1 % of the 64 KiB blocks were
#      changed at seeded random places since the target's copy: ferry --sync into one copy,
#      `rsync --inplace --no-whole-file --ignore-times` (daemon in the receiver's namespace)
#      into another; both end with an fsync of the target (rsync --fsync, ferry always).
#   2. a pass over an unchanged disk (the ferry target after case 1): ferry --sync against
#      reading both disks locally (`cat src dst > /dev/null`, cold page cache) and rsync.
# Wire bytes are the veth's own counters (tx of both ends), not what either tool says.
# Targets (issue 14): case 1 wire ≤ 1.05 × changed + 0.2 % of the disk, time ≤ 0.5 × rsync's;
# case 2 wire ≤ 0.1 % of the disk, time ≤ 1 / 0.8 × the local read of both disks.
#
# Usage: Benchmarks/delta-sync.sh [FERRY_BINARY] [WORK_DIR]
#   default binary .build/release/ferry (swift build -c release --product ferry)
#   SIZE=bytes (default 4 GiB), SEED=n (default 14), RATE=tbf rate (default 1gbit).
#   REPEAT=n runs case 2's ferry pass and local read n times, alternating (fastest counts).
#   CASES=unchanged runs case 2 alone, on a fresh random src.img and two copies of it (ferry's
#   and rsync's targets): the issue's 16 GiB figure is `SIZE=$((16 << 30)) CASES=unchanged`.
# Needs root, iproute2 (ip, tc), rsync, python3, bc, 5 × SIZE free in WORK_DIR (old, src and three
# targets; 3 × SIZE with CASES=unchanged).
set -euo pipefail

FERRY=$(realpath "${1:-.build/release/ferry}")
WORK=${2:-${TMPDIR:-/tmp}/ferry-delta-bench}
SIZE=${SIZE:-$((4 << 30))}
SEED=${SEED:-14}
RATE=${RATE:-1gbit}
PORT=${PORT:-19514}
RSYNC_PORT=${RSYNC_PORT:-19515}
CODE=7kqm-2xrt-9pfa-w3ne
NS_SEND=ferry-delta-send
NS_RECV=ferry-delta-recv
BLOCK=65536
CASES=${CASES:-all}
REPEAT=${REPEAT:-1}
case "$CASES" in all | unchanged) ;; *) echo "CASES must be all or unchanged" >&2; exit 2 ;; esac

for tool in ip tc rsync python3 bc ss "$FERRY"; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not found"; exit 0; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 0; }
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
BENCH=$(cd "$(dirname "$0")" && pwd)
cd "$WORK"
copies=5
[ "$CASES" = unchanged ] && copies=3
need=$((copies * SIZE + (256 << 20)))
have=$(df --output=avail -B1 . | tail -1)
for f in src.img old.img ferry.img ferry256.img rsync.img; do [ -f "$f" ] && have=$((have + $(stat -c %s "$f"))); done
if [ "$have" -lt "$need" ]; then
    echo "SKIP: $WORK needs $((need >> 20)) MiB free, has $((have >> 20)) MiB"
    exit 0
fi

# shellcheck source=lib/netns.sh
. "$BENCH/lib/netns.sh"
cleanup() {
    [ -f rsyncd.pid ] && kill "$(cat rsyncd.pid)" 2>/dev/null || true
    netns_down "$NS_SEND" "$NS_RECV"
}
trap cleanup EXIT INT TERM
cleanup
netns_up "$NS_SEND" "$NS_RECV" fd 10.232.0 "$RATE" both
S="ip netns exec $NS_SEND"
R="ip netns exec $NS_RECV"

# The data: old.img random; src.img = old.img with 1 % of its blocks changed (seeded).
# CASES=unchanged: src.img random, and the targets are copies of it.
if [ "$CASES" = unchanged ]; then
    rm -f old.img ferry256.img
    if [ ! -f src.img ] || [ "$(stat -c %s src.img)" != "$SIZE" ]; then head -c "$SIZE" /dev/urandom > src.img; fi
    changed=0
elif [ ! -f old.img ] || [ "$(stat -c %s old.img)" != "$SIZE" ]; then
    head -c "$SIZE" /dev/urandom > old.img
fi
if [ "$CASES" = all ]; then
cp old.img src.img
changed=$(python3 - "$SIZE" "$SEED" <<'EOF'
import os, random, sys
size, seed = int(sys.argv[1]), int(sys.argv[2])
block = 65536
blocks = (size + block - 1) // block
rng = random.Random(seed)
chosen = rng.sample(range(blocks), blocks // 100)
with open("src.img", "r+b") as f:
    for b in chosen:
        f.seek(b * block)
        f.write(rng.randbytes(min(block, size - b * block)))
print(sum(min(block, size - b * block) for b in chosen))
EOF
)
fi

cat > rsyncd.conf <<EOF
pid file = $WORK/rsyncd.pid
use chroot = no
[bench]
    path = $WORK
    read only = false
    uid = root
    gid = root
EOF

# tx bytes of both veth ends.
wire() { echo $(( $($S cat /sys/class/net/fd-send/statistics/tx_bytes) + $($R cat /sys/class/net/fd-recv/statistics/tx_bytes) )); }
now() { date +%s.%N; }

wait_listen() { netns_wait_listen "$NS_RECV" "$1"; }

# ferry_pass LABEL [TOOL TARGET SEND-ARGS...]: one `ferry send --sync` of src.img into TARGET
# (default ferry.img, keyed XXH3 leaves); "ferry-sha256 ferry256.img --digest sha256" is the
# same pass with SHA-256 leaves, the hash delta sync used before keyed XXH3.
ferry_pass() {
    local label=$1 tool=${2:-ferry} target=${3:-ferry.img}
    shift $(( $# < 3 ? $# : 3 ))
    $R "$FERRY" receive "$WORK/$target" --sync --listen 10.232.0.2:$PORT --code $CODE --progress none 2>ferry-recv.err &
    local rpid=$!
    wait_listen $PORT
    local w0 t0 t1 w1
    w0=$(wire); t0=$(now)
    $S "$FERRY" send src.img 10.232.0.2:$PORT --code $CODE --sync --progress none "$@" 2>ferry-send.err
    wait "$rpid"
    t1=$(now); w1=$(wire)
    cmp -s src.img "$target" || echo "!! $label: $tool's target differs from the source" >&2
    echo "$label $tool $(echo "$t1 - $t0" | bc -l) $((w1 - w0))" >> results.txt
    grep -h "delta pass" ferry-send.err | sed "s/^/  $label $tool: /" || true
}

# rsync_pass LABEL: rsync's delta algorithm, src.img into rsync.img, through the daemon.
rsync_pass() {
    local w0 t0 t1 w1
    w0=$(wire); t0=$(now)
    $S rsync --inplace --no-whole-file --ignore-times --fsync src.img "rsync://10.232.0.2:$RSYNC_PORT/bench/rsync.img"
    t1=$(now); w1=$(wire)
    cmp -s src.img rsync.img || echo "!! $1: rsync's target differs from the source" >&2
    echo "$1 rsync $(echo "$t1 - $t0" | bc -l) $((w1 - w0))" >> results.txt
}

rm -f results.txt
if [ "$CASES" = all ]; then
    cp old.img ferry.img
    cp old.img ferry256.img
    cp old.img rsync.img
else
    cp src.img ferry.img
    cp src.img rsync.img
fi
$R rsync --daemon --config="$WORK/rsyncd.conf" --port=$RSYNC_PORT --address=10.232.0.2
wait_listen $RSYNC_PORT
if [ "$CASES" = all ]; then
    sync; echo 3 > /proc/sys/vm/drop_caches
    ferry_pass changed1pct
    sync; echo 3 > /proc/sys/vm/drop_caches
    ferry_pass changed1pct ferry-sha256 ferry256.img --digest sha256
    sync; echo 3 > /proc/sys/vm/drop_caches
    rsync_pass changed1pct
fi
# Case 2: every target now equals the source. The ferry pass and the local read alternate,
# REPEAT times, and the fastest of each counts: this machine's disk is a virtual one whose
# speed swings by a third from one read of the same 32 GiB to the next (the host's cache).
localread() {
    sync; echo 3 > /proc/sys/vm/drop_caches
    local t0 t1
    t0=$(now); cat src.img ferry.img > /dev/null; t1=$(now)
    echo "unchanged localread $(echo "$t1 - $t0" | bc -l) 0" >> results.txt
}
for _ in $(seq 1 "$REPEAT"); do
    sync; echo 3 > /proc/sys/vm/drop_caches
    ferry_pass unchanged
    localread
done
if [ "$CASES" = all ]; then
    sync; echo 3 > /proc/sys/vm/drop_caches
    ferry_pass unchanged ferry-sha256 ferry256.img --digest sha256
fi
sync; echo 3 > /proc/sys/vm/drop_caches
rsync_pass unchanged

echo
echo "disk $SIZE bytes, $changed bytes changed ($(nproc) cores, link $RATE each way, $(basename "$FERRY")):"
awk -v size="$SIZE" -v changed="$changed" '
    { k = $1" "$2; if (!(k in t) || $3 < t[k]) { t[k] = $3; w[k] = $4 } }
    END {
        printf "%-12s %-10s %9s %14s\n", "case", "tool", "seconds", "wire bytes"
        for (k in t) { split(k, p, " "); printf "%-12s %-10s %9.2f %14d\n", p[1], p[2], t[k], w[k] }
        f = "changed1pct ferry"; r = "changed1pct rsync"
        if (f in t) printf "1 %%: ferry wire %.3f x (changed + 0.2 %% of disk) [target <= 1.05]; time %.2f x rsync [target <= 0.5]; ferry-sha256 %.2f x rsync\n",
            w[f] / (changed + 0.002 * size), t[f] / t[r], t["changed1pct ferry-sha256"] / t[r]
        u = "unchanged ferry"; l = "unchanged localread"
        printf "unchanged: ferry wire %.4f %% of the disk [target <= 0.1 %%]; speed %.2f x reading both disks locally [target >= 0.8]; rsync %.2f s\n",
            100 * w[u] / size, t[l] / t[u], t["unchanged rsync"]
    }' results.txt
