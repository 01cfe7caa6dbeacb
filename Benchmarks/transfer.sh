#!/usr/bin/env bash
# Side-by-side loopback benchmark of `ferry send/receive` (TLS 1.3 + per-block
# verification + digest) against the plaintext tools it replaces: socat with 1 MiB
# buffers, the runbook's `dd | nc`, and mbuffer. Two data sets: 1 GiB of random
# bytes and a 2 GiB disk that is half zeros (16 MiB runs, written, not holes — what
# dd sees on a real block device).
#
# Usage: Benchmarks/transfer.sh [FERRY_BINARY] [WORK_DIR]
#   default binary .build/release/ferry (swift build -c release --product ferry)
# Needs: socat, netcat-openbsd, mbuffer, GNU time (/usr/bin/time). Loopback only.
# Runs REPEAT (default 3) interleaved rounds and prints each tool's best seconds, the
# ratios to socat and socat+fsync, and peak RSS of the receiving and sending process.
# ferry-sha256 is ferry with blkhash's SHA-256 block hashes instead of the default xxh3. ferry reports success only after fsync, so "socat+fsync" is the like-for-like
# baseline; plain socat leaves the data in the page cache. Targets: random ≤ 1.1× socat, half-zero ≤ 0.5× socat, RSS ≤ 128 MiB.
set -euo pipefail

FERRY=$(realpath "${1:-.build/release/ferry}")
WORK=${2:-${TMPDIR:-/tmp}/ferry-transfer-bench}
PORT=${PORT:-19473}
HOST=127.0.0.1
CODE=7kqm-2xrt-9pfa-w3ne
REPEAT=${REPEAT:-3}

for tool in socat nc mbuffer /usr/bin/time "$FERRY"; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not found"; exit 0; }
done
mkdir -p "$WORK"
cd "$WORK"

if [ ! -f random.img ]; then
    head -c 1G /dev/urandom > random.img
fi
if [ ! -f halfzero.img ]; then
    # 64 × (16 MiB random + 16 MiB zeros) = 2 GiB, zeros allocated.
    for i in $(seq 0 63); do
        dd if=random.img bs=16M skip=$((i % 64)) count=1 status=none
        head -c 16M /dev/zero
    done > halfzero.img
fi

wait_listen() {
    for _ in $(seq 1 200); do
        ss -ltn "sport = :$PORT" | grep -q LISTEN && return 0
        sleep 0.05
    done
    echo "listener on $PORT did not come up" >&2
    return 1
}

# run NAME RECEIVER-CMD SENDER-CMD: times the transfer, records peak RSS of both sides.
run() {
    local name=$1 recv=$2 send=$3
    rm -f out.img .out.img.ferry-partial .out.img.ferry-journal
    sync  # earlier runs' dirty pages must not be written back during this one
    /usr/bin/time -f %M -o recv.rss bash -c "$recv" 2>recv.err &
    local rpid=$!
    wait_listen
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -f %M -o send.rss bash -c "$send" 2>send.err
    wait "$rpid"
    end=$(date +%s.%N)
    local secs rss_r rss_s
    secs=$(echo "$end - $start" | bc -l)
    rss_r=$(( $(tail -1 recv.rss) / 1024 ))
    rss_s=$(( $(tail -1 send.rss) / 1024 ))
    if ! cmp -s "$SRC" out.img; then echo "!! $name: output differs from source" >&2; fi
    printf '%s %s %.2f %d %d\n' "$DATASET" "$name" "$secs" "$rss_r" "$rss_s" >> results.txt
}

rm -f results.txt
for DATASET in random halfzero; do
    SRC=$DATASET.img
    for _ in $(seq 1 "$REPEAT"); do  # rounds interleave the tools, so a noisy moment hits all
        cat "$SRC" > /dev/null  # warm the page cache equally for every tool
        run socat \
            "socat -u -b 1048576 TCP-LISTEN:$PORT,reuseaddr OPEN:out.img,creat,trunc" \
            "socat -u -b 1048576 OPEN:$SRC TCP:$HOST:$PORT"
        # socat plus an fsync of the output: ferry only reports success once the target is durable.
        run socat+fsync \
            "socat -u -b 1048576 TCP-LISTEN:$PORT,reuseaddr OPEN:out.img,creat,trunc && sync out.img" \
            "socat -u -b 1048576 OPEN:$SRC TCP:$HOST:$PORT"
        run dd+nc \
            "nc -l $HOST $PORT | dd of=out.img bs=1M status=none" \
            "dd if=$SRC bs=1M status=none | nc -N $HOST $PORT"
        run mbuffer \
            "mbuffer -q -m 64M -I $PORT -o out.img" \
            "mbuffer -q -m 64M -i $SRC -O $HOST:$PORT"
        run ferry \
            "$FERRY receive out.img --listen $HOST:$PORT --code $CODE --progress none" \
            "$FERRY send $SRC $HOST:$PORT --code $CODE --progress none"
        run ferry-nocompress \
            "$FERRY receive out.img --listen $HOST:$PORT --code $CODE --progress none" \
            "$FERRY send $SRC $HOST:$PORT --code $CODE --progress none --compress none"
        run ferry-sha256 \
            "$FERRY receive out.img --listen $HOST:$PORT --code $CODE --progress none" \
            "$FERRY send $SRC $HOST:$PORT --code $CODE --progress none --digest sha256"
    done
done

# Best of the rounds per tool (the least disturbed run), its ratio to socat's best,
# and the largest RSS seen.
echo
printf '%-9s %-17s %8s %9s %9s %10s %10s\n' dataset tool 'best s' 'x socat' 'x s+fsync' 'RSS recv' 'RSS send'
awk '{ k = $1 " " $2
       if (!(k in best) || $3 < best[k]) best[k] = $3
       if ($4 > rr[k]) rr[k] = $4
       if ($5 > rs[k]) rs[k] = $5
       if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
     END { for (i = 0; i < n; i++) { k = order[i]; split(k, p, " ")
             printf "%-9s %-17s %8.2f %8.2fx %8.2fx %6d MiB %6d MiB\n", p[1], p[2], best[k],
                    best[k] / best[p[1] " socat"], best[k] / best[p[1] " socat+fsync"], rr[k], rs[k] } }' results.txt
