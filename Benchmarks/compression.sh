#!/usr/bin/env bash
# `ferry send --compress auto` against every fixed choice, in one run:
#   1. loopback, --limit 100M (the policy is told the link's rate), 1 GiB tar of /usr;
#   2. as root with ip and tc: the same over a veth pair between two network namespaces
#      shaped with tbf to 800 Mbit/s, without --limit (the policy must learn the rate);
#   3. auto vs none on 1 GiB of random bytes over unlimited loopback (compression must
#      cost almost nothing when it cannot help).
# Prints seconds per run and auto's speed-up against none and against the best fixed codec (> 1 is
# auto faster). Targets: over 100 MB/s auto ≥ 1.5× none and ≥ 0.95× the best fixed
# codec; on random data auto ≥ 0.95× none.
#
# Usage: Benchmarks/compression.sh [FERRY_BINARY] [WORK_DIR]
#   default binary .build/release/ferry (swift build -c release --product ferry)
#   REPEAT=N runs every case N times and keeps the fastest (default 1).
#   SKIP_NETNS=1 skips case 2.
# Needs: tar, ss, bc, 3.25 GiB free in WORK_DIR; for case 2 root, iproute2 (ip, tc) and
# the sch_tbf module.
set -euo pipefail

FERRY=$(realpath "${1:-.build/release/ferry}")
WORK=${2:-${TMPDIR:-/tmp}/ferry-compression-bench}
PORT=${PORT:-19474}
REPEAT=${REPEAT:-1}
CODE=7kqm-2xrt-9pfa-w3ne
NS_SEND=ferry-bench-send
NS_RECV=ferry-bench-recv
SIZE=$((1 << 30))

for tool in tar ss bc "$FERRY"; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not found"; exit 0; }
done
mkdir -p "$WORK"
cd "$WORK"
# Room for the two data sets and one received copy (a full disk fails the receiver).
need=$((3 * SIZE + (256 << 20)))
have=$(df --output=avail -B1 . | tail -1)
for f in usr.img random.img; do  # data sets kept from an earlier run count as room
    if [ -f "$f" ]; then have=$((have + $(stat -c %s "$f"))); fi
done
if [ "$have" -lt "$need" ]; then
    echo "SKIP: $WORK needs $((need >> 20)) MiB free for data sets and output, has $((have >> 20)) MiB"
    exit 0
fi

# Deterministic compressible data: /usr as a sorted tar with fixed metadata, cut (or
# padded) to 1 GiB. Same machine, same bytes.
if [ ! -f usr.img ]; then
    { tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - -C / usr 2>/dev/null || true; } |
        head -c "$SIZE" > usr.img
    truncate -s "$SIZE" usr.img
fi
if [ ! -f random.img ]; then
    head -c "$SIZE" /dev/urandom > random.img
fi

netns=0
cleanup() {
    if [ "$netns" = 1 ]; then
        ip netns del "$NS_SEND" 2>/dev/null || true
        ip netns del "$NS_RECV" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

# A veth pair between two namespaces; the sender's side shaped to 800 Mbit/s (the
# direction the data flows), the receiver's acks unshaped.
setup_netns() {
    [ "${SKIP_NETNS:-0}" = 1 ] && return 1
    [ "$(id -u)" = 0 ] || { echo "SKIP netns case: not root"; return 1; }
    command -v ip >/dev/null && command -v tc >/dev/null || { echo "SKIP netns case: ip/tc not found"; return 1; }
    cleanup
    netns=1
    ip netns add "$NS_SEND" && ip netns add "$NS_RECV" &&
        ip link add fb-send netns "$NS_SEND" type veth peer name fb-recv netns "$NS_RECV" &&
        ip -n "$NS_SEND" addr add 10.231.0.1/24 dev fb-send &&
        ip -n "$NS_RECV" addr add 10.231.0.2/24 dev fb-recv &&
        ip -n "$NS_SEND" link set lo up && ip -n "$NS_RECV" link set lo up &&
        ip -n "$NS_SEND" link set fb-send up && ip -n "$NS_RECV" link set fb-recv up &&
        tc -n "$NS_SEND" qdisc add dev fb-send root tbf rate 800mbit burst 1mb latency 20ms ||
        { echo "SKIP netns case: could not build the veth pair"; cleanup; netns=0; return 1; }
}

# wait_listen NETNS-PREFIX: until the receiver listens on $PORT.
wait_listen() {
    for _ in $(seq 1 200); do
        $1 ss -ltn "sport = :$PORT" | grep -q LISTEN && return 0
        sleep 0.05
    done
    echo "listener on $PORT did not come up" >&2
    return 1
}

# run CASE MODE SRC HOST SEND-PREFIX RECV-PREFIX EXTRA-SEND-FLAGS: one timed transfer.
run() {
    local case=$1 mode=$2 src=$3 host=$4 sendp=$5 recvp=$6 extra=$7
    rm -f out.img .out.img.ferry-partial .out.img.ferry-journal
    sync  # earlier runs' dirty pages must not be written back during this one
    $recvp "$FERRY" receive out.img --listen "$host:$PORT" --code "$CODE" --progress none 2>recv.err &
    local rpid=$!
    wait_listen "$recvp"
    local start end
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    FERRY_TRACE_COMPRESSION=1 $sendp "$FERRY" send "$src" "$host:$PORT" --code "$CODE" --progress none \
        --compress "$mode" $extra 2>send.err
    wait "$rpid"
    end=$(date +%s.%N)
    if ! cmp -s "$src" out.img; then echo "!! $case $mode: output differs from source" >&2; fi
    printf '%s %s %.2f\n' "$case" "$mode" "$(echo "$end - $start" | bc -l)" >> results.txt
    if [ "$mode" = auto ]; then
        { printf '%s: ' "$case"; grep -o 'auto:.*' send.err || echo "(no trace)"; } >> traces.txt
    fi
}

rm -f results.txt traces.txt
cat usr.img random.img > /dev/null  # warm the page cache
for _ in $(seq 1 "$REPEAT"); do
    for mode in none lz4 zstd gzip auto; do
        run limit100M "$mode" usr.img 127.0.0.1 "" "" "--limit 100M"
    done
    for mode in none auto; do
        run random "$mode" random.img 127.0.0.1 "" "" ""
    done
done
if setup_netns; then
    for _ in $(seq 1 "$REPEAT"); do
        for mode in none lz4 zstd gzip auto; do
            run tbf800mbit "$mode" usr.img 10.231.0.2 "ip netns exec $NS_SEND" "ip netns exec $NS_RECV" ""
        done
    done
fi

echo
echo "fastest of $REPEAT run(s), seconds (ferry $(basename "$FERRY"), $(nproc) cores):"
best() { awk -v c="$1" -v m="$2" '$1==c && $2==m {if (b=="" || $3<b) b=$3} END {print b}' results.txt; }
for case in limit100M tbf800mbit random; do
    grep -q "^$case " results.txt || continue
    line="$case:"
    fixed=""
    for mode in none lz4 zstd gzip auto; do
        t=$(best "$case" "$mode")
        [ -n "$t" ] || continue
        line="$line $mode $t"
        if [ "$mode" != auto ] && [ "$mode" != none ]; then
            if [ -z "$fixed" ] || (( $(echo "$t < $fixed" | bc -l) )); then fixed=$t; fi
        fi
    done
    auto=$(best "$case" auto)
    none=$(best "$case" none)
    line="$line | auto speed-up: vs none $(printf '%.2f' "$(echo "$none / $auto" | bc -l)")x"
    if [ -n "$fixed" ]; then
        line="$line, vs best fixed $(printf '%.2f' "$(echo "$fixed / $auto" | bc -l)")x"
    fi
    echo "$line"
done
echo
cat traces.txt
