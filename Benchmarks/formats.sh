#!/usr/bin/env bash
# Image-format benchmark: ferry against qemu-img, side by side in one run.
#
#   Benchmarks/formats.sh         (BENCH_DIR=/some/disk to choose where the data goes)
#
# (a) 2 GiB, half data (1 MiB random blocks interleaved with holes) as monolithicSparse
#     and streamOptimized VMDK → raw: ferry copy vs qemu-img convert -O raw;
# (b) the raw disk → qcow2: ferry copy vs qemu-img convert -O qcow2, and vs qemu-img followed by
#     sync (ferry fsyncs before it reports success; qemu-img convert does not);
# (c) a 100 GiB virtual qcow2 and VMDK with 1 % allocated → ferry checksum (target: < 2 s);
# (d) ferry inspect of a 50 GiB NTFS disk, (e) a 6 GiB disk of holes → qcow2 (both < 2 s).
# Best of 3, warm page cache; prints seconds and the ratio ferry/qemu-img.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-/var/tmp/ferry-bench}
mkdir -p "$dir"
swift build -c release --product ferry >/dev/null
ferry=$(swift build -c release --show-bin-path)/ferry
command -v qemu-img >/dev/null || { echo "needs qemu-img (apt-get install qemu-utils)"; exit 1; }

best() {  # best of 3 wall-clock seconds of a command, removing $dir/out.* first
  local best=""
  for _ in 1 2 3; do
    rm -f "$dir"/out.*
    local s e
    s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
    local t; t=$(awk "BEGIN{print $e-$s}")
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
  done
  echo "$best"
}

row() { printf "%-34s ferry %6.2f s   qemu-img %6.2f s   ratio %.2fx\n" "$1" "$2" "$3" "$(awk "BEGIN{print $2/$3}")"; }

if [ ! -f "$dir/half.raw" ]; then
  truncate -s 2G "$dir/half.raw"
  for i in $(seq 0 2 2047); do
    dd if=/dev/urandom of="$dir/half.raw" bs=1M count=1 seek="$i" conv=notrunc status=none
  done
fi
[ -f "$dir/half-sparse.vmdk" ] || qemu-img convert -O vmdk -o subformat=monolithicSparse "$dir/half.raw" "$dir/half-sparse.vmdk"
[ -f "$dir/half-stream.vmdk" ] || qemu-img convert -O vmdk -o subformat=streamOptimized "$dir/half.raw" "$dir/half-stream.vmdk"
cat "$dir"/half* > /dev/null

echo "== 2 GiB, half data"
for v in sparse stream; do
  f=$(best "$ferry" copy "$dir/half-$v.vmdk" "$dir/out.raw" --progress none)
  q=$(best qemu-img convert -O raw "$dir/half-$v.vmdk" "$dir/out.raw")
  row "VMDK $v → raw" "$f" "$q"
done
f=$(best "$ferry" copy "$dir/half.raw" "$dir/out.qcow2" --progress none)
q=$(best qemu-img convert -O qcow2 "$dir/half.raw" "$dir/out.qcow2")
row "raw → qcow2" "$f" "$q"
# qemu-img convert leaves the data in the page cache; ferry fsyncs before it reports success.
qs=$(best sh -c "qemu-img convert -O qcow2 '$dir/half.raw' '$dir/out.qcow2' && sync '$dir/out.qcow2'")
row "raw → qcow2 (qemu-img + sync)" "$f" "$qs"

echo
echo "== 100 GiB virtual, 1 % allocated → ferry checksum"
if [ ! -f "$dir/big.qcow2" ]; then
  truncate -s 100G "$dir/big.raw"
  for i in $(seq 0 99); do  # 10 MiB of data in every GiB
    dd if=/dev/urandom of="$dir/big.raw" bs=1M count=10 seek=$((i * 1024)) conv=notrunc status=none
  done
  qemu-img convert -O qcow2 "$dir/big.raw" "$dir/big.qcow2"
  qemu-img convert -O vmdk -o subformat=monolithicSparse "$dir/big.raw" "$dir/big.vmdk"
  rm -f "$dir/big.raw"
fi
for img in big.qcow2 big.vmdk; do
  t=$(best "$ferry" checksum "$dir/$img")
  printf "%-34s %6.2f s\n" "$img" "$t"
done
rm -f "$dir"/out.*

echo
echo "== speed that tests used to assert (now measured here only)"
# (d) ferry inspect of a 50 GiB sparse disk holding a bare NTFS volume: metadata reads only
#     (target: < 2 s; GuestInspectorTests asserts only the bytes read).
if command -v mkntfs >/dev/null; then
  [ -f "$dir/ntfs50g.raw" ] || { truncate -s 50G "$dir/ntfs50g.raw" && mkntfs -F -Q -q "$dir/ntfs50g.raw" >/dev/null 2>&1; }
  t=$(best "$ferry" inspect "$dir/ntfs50g.raw")
  printf "%-34s %6.2f s\n" "inspect 50 GiB NTFS" "$t"
fi
# (e) a 6 GiB disk of holes → qcow2: the writer must allocate nothing for zeros
#     (target: < 2 s; QCOW2WriterTests asserts only that nothing is allocated).
truncate -s 6G "$dir/holes6g.raw"
t=$(best "$ferry" copy "$dir/holes6g.raw" "$dir/out.qcow2" --progress none)
printf "%-34s %6.2f s\n" "6 GiB of holes → qcow2" "$t"
rm -f "$dir"/out.*
