#!/usr/bin/env bash
# ferry fix on a 50 GiB disk: what it reads and writes, and how long it takes (issue 11:
# "fixing a disk reads and writes only the hive and metadata clusters it needs").
#
#   Benchmarks/fix-large.sh        (FERRY=binary to skip the release build; BENCH_DIR=/some/disk to choose where the data goes; root: FUSE)
#
# The guest is the demo's Windows Server 2003 (ferry demo --keep), its files copied onto a
# 50 GiB mbr63 NTFS disk made by mkntfs and ntfs-3g (Tests/Fixtures/make-guest-fixtures.sh).
# Bytes read and written are summed from strace over every read/pread/write/pwrite of the
# fix (the undo file included), so the page cache cannot hide them.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-/var/tmp/ferry-bench}/fix-large
rm -rf "$dir"; mkdir -p "$dir/tree"
# FERRY=path/to/ferry uses that binary (a debug build reads and writes the same bytes, slower).
if [ -z "${FERRY:-}" ]; then
  swift build -c release --product ferry >/dev/null
  FERRY=$(swift build -c release --show-bin-path)/ferry
fi
ferry=$FERRY
for t in strace losetup ntfs-3g mkntfs sfdisk; do command -v $t >/dev/null || { echo "needs $t"; exit 1; }; done

"$ferry" demo --directory "$dir/demo" --keep >/dev/null 2>&1
loop=$(losetup --find --show --read-only --offset $((63 * 512)) "$dir/demo/win2003-flat.vmdk")
mnt=$(mktemp -d)
ntfs-3g -o ro "$loop" "$mnt"
cp -r "$mnt"/. "$dir/tree"/
umount "$mnt"; rmdir "$mnt"; losetup -d "$loop"
Tests/Fixtures/make-guest-fixtures.sh ntfs "$dir/disk.img" mbr63 "$dir/tree" 51200
size=$(stat -c %s "$dir/disk.img")

start=$(date +%s.%N)
strace -f -qq -e trace=read,pread64,write,pwrite64 -o "$dir/strace.log" "$ferry" fix "$dir/disk.img" >"$dir/fix.out"
end=$(date +%s.%N)
read_bytes=$(awk '/^[0-9]+ +(read|pread64)\(/ { n = $NF; if (n ~ /^[0-9]+$/) s += n } END { print s + 0 }' "$dir/strace.log")
written=$(awk '/^[0-9]+ +(write|pwrite64)\(/ { n = $NF; if (n ~ /^[0-9]+$/) s += n } END { print s + 0 }' "$dir/strace.log")
grep -E "^ferry fix: wrote" "$dir/fix.out" || true
awk -v s="$start" -v e="$end" -v r="$read_bytes" -v w="$written" -v z="$size" 'BEGIN {
  printf "disk %.1f GiB: fix read %.2f MiB (%.5f %% of the disk), wrote %.2f MiB (disk and undo file), %.2f s under strace\n",
         z / 2^30, r / 2^20, 100 * r / z, w / 2^20, e - s }'
/usr/bin/time -f "without strace: %e s, peak RSS %M KiB" "$ferry" fix --undo "$dir/disk.img.ferry-undo" "$dir/disk.img" >/dev/null
rm -f "$dir/disk.img.ferry-undo"
/usr/bin/time -f "fix again without strace: %e s, peak RSS %M KiB" "$ferry" fix "$dir/disk.img" >/dev/null
