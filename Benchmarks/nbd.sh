#!/usr/bin/env bash
# NBD benchmark: ferry's server and client against qemu-nbd and nbdcopy, side by side in one run.
#
#   Benchmarks/nbd.sh             (BENCH_DIR=/some/disk for the data, SIZE=1G for a quick run,
#                                  FERRY=path to use that binary instead of a release build)
#
# Data: a qcow2 of SIZE (default 4G) virtual bytes, half allocated: 1 MiB random blocks
# interleaved with unallocated 1 MiB (qemu-img convert of a sparse raw).
# (a) server: nbdcopy from `ferry serve` vs from `qemu-nbd` of the same qcow2, to null: (the
#     server's cost only) and to a raw file;
# (b) client: from that same qemu-nbd, `ferry copy nbd+unix://…` vs `nbdcopy nbd+unix://…` to a
#     raw file (ferry always fsyncs the target at the end, so `nbdcopy --flush` is the like-for-like
#     anchor; plain nbdcopy is shown too), and `ferry checksum nbd+unix://…` (read and hash only)
#     vs `nbdcopy … null:`; peak RSS of that ferry copy (GNU time's maximum resident set size).
#     FERRY_NBD_CONNECTIONS (ferry's client; default 4, as nbdcopy's) is passed through;
# (d) latency-bound reads: `nbdkit --filter=delay rdelay=10ms file` of 512 MiB of random data,
#     `ferry copy` vs `nbdcopy --flush` (what the copy engine's read-ahead is for: a remote
#     export, where each read mostly waits), when nbdkit is installed;
# (c) peak RSS of `ferry serve` (VmHWM in /proc/PID/status) with 1 nbdcopy and with 8 in parallel,
#     each a fresh server. nbdcopy opens 4 connections per client (multi-conn).
# Best of 3, warm page cache, unix sockets. Every server is stopped when the script exits.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-/var/tmp/ferry-bench}
size=${SIZE:-4G}
mkdir -p "$dir"
for t in qemu-img qemu-nbd nbdcopy nbdinfo python3 /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "needs $t (apt-get install qemu-utils nbdkit libnbd-bin)"; exit 1; }
done
if [ -z "${FERRY:-}" ]; then
  swift build -c release --product ferry >/dev/null
  FERRY=$(swift build -c release --show-bin-path)/ferry
fi
ferry=$FERRY
case "$ferry" in  # label the figures: a debug build's are no release's
  */debug/*) build="DEBUG build $ferry" ;;
  *) build="release build $ferry" ;;
esac

servers=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${servers[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -f "$dir"/out.raw "$dir"/nbd-*.sock
}
trap cleanup EXIT

bytes=$(numfmt --from=iec "$size")
src=$dir/nbd-half-$size.qcow2
if [ ! -f "$src" ]; then
  python3 - "$dir/nbd-half.raw" "$bytes" <<'PY'
import os, sys
mib = 1 << 20
path, size = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.truncate(size)
    for i in range(0, size // mib, 2):
        f.seek(i * mib)
        f.write(os.urandom(mib))
PY
  qemu-img convert -f raw -O qcow2 "$dir/nbd-half.raw" "$src"
  rm -f "$dir/nbd-half.raw"
fi
cat "$src" >/dev/null

# wait_for URI: until nbdinfo reaches the server (30 s at most).
wait_for() {
  for _ in $(seq 300); do nbdinfo --size "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "no NBD server at $1" >&2
  exit 1
}

# Starts `ferry serve SRC` on a socket; sets ferry_pid and ferry_uri.
start_ferry() {
  rm -f "$dir/nbd-ferry.sock"
  "$ferry" serve "$src" --nbd "unix:$dir/nbd-ferry.sock" 2>/dev/null &
  ferry_pid=$!
  servers+=("$ferry_pid")
  ferry_uri="nbd+unix:///$(basename "$src")?socket=$dir/nbd-ferry.sock"
  wait_for "$ferry_uri"
}

stop_ferry() {
  kill -TERM "$ferry_pid"
  local status=0
  wait "$ferry_pid" || status=$?
  [ "$status" -eq 0 ] || echo "warning: ferry serve exited $status on SIGTERM" >&2
}

best() {  # best of 3 wall-clock seconds of a command, removing $dir/out.raw first
  local best=""
  for _ in 1 2 3; do
    rm -f "$dir/out.raw"
    local s e t
    s=$(date +%s.%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; e=$(date +%s.%N)
    t=$(awk "BEGIN{print $e-$s}")
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
  done
  echo "$best"
}

gbps() { awk "BEGIN{printf \"%.2f GB/s\", $bytes/$1/1e9}"; }
row() {  # row LABEL FERRY_SECONDS ANCHOR_NAME ANCHOR_SECONDS
  printf "%-30s ferry %6.2f s (%s)   %-8s %6.2f s (%s)   ratio %.2fx\n" "$1" "$2" "$(gbps "$2")" "$3" "$4" "$(gbps "$4")" \
    "$(awk "BEGIN{print $2/$4}")"
}

rm -f "$dir/nbd-qemu.sock"
qemu-nbd -r -t -e 32 -f qcow2 -k "$dir/nbd-qemu.sock" "$src" &
servers+=("$!")
qemu_uri="nbd+unix:///?socket=$dir/nbd-qemu.sock"
wait_for "$qemu_uri"
start_ferry

echo "== $size virtual qcow2, half allocated ($(du -h "$src" | cut -f1) on disk); ferry: $build"
echo "   ferry's NBD client: FERRY_NBD_CONNECTIONS=${FERRY_NBD_CONNECTIONS:-4 (default)}"
echo "-- (a) server: nbdcopy from ferry serve vs from qemu-nbd"
row "nbdcopy → null:" "$(best nbdcopy "$ferry_uri" null:)" qemu-nbd "$(best nbdcopy "$qemu_uri" null:)"
row "nbdcopy → raw file" "$(best nbdcopy "$ferry_uri" "$dir/out.raw")" qemu-nbd "$(best nbdcopy "$qemu_uri" "$dir/out.raw")"
stop_ferry

echo "-- (b) client: from qemu-nbd, ferry copy vs nbdcopy"
copy=$(best "$ferry" copy "$qemu_uri" "$dir/out.raw" --progress none)
row "NBD → raw file (fsync)" "$copy" "nbdcopy --flush" "$(best nbdcopy --flush "$qemu_uri" "$dir/out.raw")"
row "NBD → raw file" "$copy" nbdcopy "$(best nbdcopy "$qemu_uri" "$dir/out.raw")"
row "NBD → checksum / null:" "$(best "$ferry" checksum "$qemu_uri" --progress none)" nbdcopy "$(best nbdcopy "$qemu_uri" null:)"
# The rows above use the default digest, xxh3 (where libxxhash is installed; as `send`'s default,
# a tenth of SHA-256's CPU). --digest sha256 is the blkhash/blksum/`nbdcopy --blkhash`-compatible
# digest, and the hash is then on the copy's critical path.
row "NBD → raw file (fsync), --digest sha256" "$(best "$ferry" copy "$qemu_uri" "$dir/out.raw" --progress none --digest sha256)" "nbdcopy --flush" \
    "$(best nbdcopy --flush "$qemu_uri" "$dir/out.raw")"
rm -f "$dir/out.raw"
rss=$(/usr/bin/time -f %M "$ferry" copy "$qemu_uri" "$dir/out.raw" --progress none 2>&1 >/dev/null | tail -1)
printf "peak RSS of ferry copy nbd+unix://… → raw file: %d MiB\n" $((rss / 1024))

echo "-- (c) peak RSS of ferry serve (VmHWM)"
for clients in 1 8; do
  start_ferry
  idle=$(awk '/^VmHWM/{print $2}' "/proc/$ferry_pid/status")
  s=$(date +%s.%N)
  pids=()
  for _ in $(seq "$clients"); do nbdcopy "$ferry_uri" null: & pids+=("$!"); done
  for pid in "${pids[@]}"; do wait "$pid"; done
  e=$(date +%s.%N)
  hwm=$(awk '/^VmHWM/{print $2}' "/proc/$ferry_pid/status")
  printf "%d client%s: peak RSS %4d MiB (%d MiB before any client), %5.2f s for %d × %s\n" "$clients" \
    "$([ "$clients" -eq 1 ] && echo " " || echo s)" $((hwm / 1024)) $((idle / 1024)) "$(awk "BEGIN{print $e-$s}")" "$clients" "$size"
  stop_ferry
done

if command -v nbdkit >/dev/null; then
  echo "-- (d) latency-bound: nbdkit file with the delay filter (10 ms a read), 512 MiB of data"
  head -c 512M /dev/urandom >"$dir/nbd-lat.raw"
  rm -f "$dir/nbd-lat.sock"
  nbdkit -f -r -U "$dir/nbd-lat.sock" --filter=delay file "$dir/nbd-lat.raw" rdelay=10ms &
  servers+=("$!")
  lat_uri="nbd+unix:///?socket=$dir/nbd-lat.sock"
  wait_for "$lat_uri"
  bytes=$((512 << 20))
  row "delayed NBD → raw file" "$(best "$ferry" copy "$lat_uri" "$dir/out.raw" --progress none)" "nbdcopy --flush" \
    "$(best nbdcopy --flush "$lat_uri" "$dir/out.raw")"
  rm -f "$dir/nbd-lat.raw"
fi
