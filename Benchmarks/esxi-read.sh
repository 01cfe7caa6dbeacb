#!/usr/bin/env bash
# Reading a VM disk from ESXi's /folder service: ferry against one curl stream and against
# virt-v2v's path (nbdkit's curl plugin + nbdcopy), side by side through the vSphere simulator
# (Tests/Fixtures/vcsim) on loopback, every request throttled to THROTTLE bytes/s (default
# 50 MB/s: ESXi throttles each connection).
#
#   Benchmarks/esxi-read.sh                  # debug ferry from .build/debug (FERRY=… for another)
#   SIZE_GIB=4 DATA_GIB=1 THROTTLE=50000000 Benchmarks/esxi-read.sh
#
# Data: a SIZE_GIB monolithicSparse VMDK (made by qemu-img) with DATA_GIB of random data in
# 64 MiB runs, plus its flat twin (the same disk as a -flat extent) for curl and nbdkit, which
# cannot parse grain tables and read every byte. Prints seconds, the bytes the simulator served,
# and ferry's peak RSS (GNU time's %M). No timing here is asserted by any test.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${SIZE_GIB:-4}
data=${DATA_GIB:-1}
throttle=${THROTTLE:-50000000}
ferry=${FERRY:-.build/debug/ferry}
[ -x "$ferry" ] || swift build --product ferry >/dev/null
sim=.build/ferry-vcsim
[ -x "$sim" ] || Tests/Fixtures/vcsim/build.sh "$sim" >/dev/null
work=$(mktemp -d /var/tmp/ferry-esxi-bench.XXXXXX)
fifo=$work/stdin
mkfifo "$fifo"
cleanup() { exec 9>&- 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$sim" -user root -pass bench -power off -throttle "$throttle" <"$fifo" >"$work/hello" 2>/dev/null &
exec 9>"$fifo"
for _ in $(seq 100); do [ -s "$work/hello" ] && break; sleep 0.1; done
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/hello" "$1"; }
url=$(field url); ds=$(field datastore); dsname=$(field dsName); fp=$(field fingerprint)
host=${url#https://}
stats() { curl -sk "$url/ferry-stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['bytes'])"; }

mkdir -p "$ds/bench"
truncate -s "${size}G" "$work/disk.raw"
runs=$((data * 16))
for i in $(seq 0 $((runs - 1))); do
  dd if=/dev/urandom of="$work/disk.raw" bs=1M count=64 seek=$((i * size * 1024 / runs)) conv=notrunc status=none
done
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$work/disk.raw" "$ds/bench/sparse.vmdk"
qemu-img convert -f raw -O vmdk -o subformat=monolithicFlat "$work/disk.raw" "$ds/bench/flat.vmdk"
rm "$work/disk.raw"
echo "disk: ${size} GiB, ${data} GiB allocated; throttle $throttle B/s per request; ferry: $ferry"

printf 'bench\n' >"$work/pw"
export FERRY_ESXI_PASSWORD_FILE=$work/pw
before=$(stats)
/usr/bin/time -f "%e %M" -o "$work/ferry.time" \
  "$ferry" copy "esxi://root@$host/[$dsname] bench/sparse.vmdk?fingerprint=$fp" "$work/ferry.raw" >/dev/null
after=$(stats)
read -r ferry_s ferry_kb <"$work/ferry.time"
echo "ferry copy (sparse VMDK, 4 streams): ${ferry_s} s, served $(( (after - before) >> 20 )) MiB, peak RSS $((ferry_kb / 1024)) MiB"
rm -f "$work/ferry.raw"

[ "${ONLY_FERRY:-0}" = 1 ] && exit 0
folder="$url/folder/bench/flat-flat.vmdk?dcPath=ha-datacenter&dsName=$dsname"
start=$(date +%s.%N)
curl -sk -u root:bench -o "$work/curl.raw" "$folder"
end=$(date +%s.%N)
echo "curl, one stream (-flat file): $(python3 -c "print(round($end - $start, 2))") s"
rm -f "$work/curl.raw"

if command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null; then
  start=$(date +%s.%N)
  nbdkit -U - curl "$folder" user=root password=bench sslverify=false --run "nbdcopy \"\$uri\" $work/nbd.raw"
  end=$(date +%s.%N)
  echo "nbdkit curl + nbdcopy (-flat file): $(python3 -c "print(round($end - $start, 2))") s"
fi
