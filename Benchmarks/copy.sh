#!/usr/bin/env bash
# Copy-engine benchmark: ferry against the anchors, side by side in one run.
#
#   Benchmarks/copy.sh            # builds ferry in release mode, makes the data, runs everything
#   BENCH_DIR=/some/disk Benchmarks/copy.sh
#
# Data: (a) 2 GiB with 50 % zero 1 MiB blocks (written zeros, not holes) interleaved
# with random data; (b) 1 GiB of random data; (c) a 16 GiB sparse file with 1 GiB of
# data, for peak RSS. Every tool copies the same file to a new file on the same file
# system with a warm page cache; each run is repeated 3 times and the best time kept.
# Prints seconds, ratios against nbdcopy and dd, and peak RSS (GNU time's %M).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-/var/tmp/ferry-bench}
mkdir -p "$dir"
swift build -c release --product ferry >/dev/null
ferry=$(swift build -c release --show-bin-path)/ferry
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs GNU time (apt-get install time)"; exit 1; }

make_data() {
  if [ ! -f "$dir/halfzero.raw" ]; then
    python3 - "$dir/halfzero.raw" <<'PY'
import os, sys
mib = 1 << 20
with open(sys.argv[1], "wb") as f:
    zero = bytes(mib)
    for i in range(2048):
        f.write(os.urandom(mib) if i % 2 == 0 else zero)
PY
  fi
  [ -f "$dir/random.raw" ] || head -c 1G /dev/urandom > "$dir/random.raw"
  if [ ! -f "$dir/sparse16g.raw" ]; then
    truncate -s 16G "$dir/sparse16g.raw"
    for i in $(seq 0 15); do
      dd if=/dev/urandom of="$dir/sparse16g.raw" bs=1M count=64 seek=$((i * 1024)) conv=notrunc status=none
    done
  fi
}

# best_of CMD…: runs CMD three times (removing $dir/out.raw first), prints "seconds rss_kib".
best_of() {
  local best="" rss=0
  for _ in 1 2 3; do
    rm -f "$dir/out.raw"
    sync
    local t
    $TIME -f "%e %M" -o "$dir/time.out" "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
    t=$(tail -1 "$dir/time.out")
    local s=${t% *} m=${t#* }
    if [ -z "$best" ] || awk "BEGIN{exit !($s < $best)}"; then best=$s; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss"
}

run_case() {
  local name=$1 src=$2
  echo
  echo "== $name: $(du -h --apparent-size "$src" | cut -f1) ($(du -h "$src" | cut -f1) allocated)"
  declare -A secs rss
  local tools=(ferry nbdcopy qemu-img cp dd)
  for tool in "${tools[@]}"; do
    local r
    case $tool in
      ferry) r=$(best_of "$ferry" copy "$src" "$dir/out.raw" --progress none) ;;
      nbdcopy) command -v nbdcopy >/dev/null || continue; r=$(best_of nbdcopy "$src" "$dir/out.raw") ;;
      qemu-img) command -v qemu-img >/dev/null || continue; r=$(best_of qemu-img convert -O raw "$src" "$dir/out.raw") ;;
      cp) r=$(best_of cp --sparse=always "$src" "$dir/out.raw") ;;
      dd) r=$(best_of dd if="$src" of="$dir/out.raw" bs=1M status=none) ;;
    esac
    secs[$tool]=${r% *}
    rss[$tool]=${r#* }
  done
  printf "%-10s %8s %10s %10s %10s\n" tool seconds "vs nbdcopy" "vs dd" "peak RSS"
  for tool in "${tools[@]}"; do
    [ -n "${secs[$tool]:-}" ] || continue
    local vn="-" vd="-"
    [ -n "${secs[nbdcopy]:-}" ] && vn=$(awk "BEGIN{printf \"%.2fx\", ${secs[$tool]}/${secs[nbdcopy]}}")
    vd=$(awk "BEGIN{printf \"%.2fx\", ${secs[$tool]}/${secs[dd]}}")
    printf "%-10s %8s %10s %10s %7d MiB\n" "$tool" "${secs[$tool]}" "$vn" "$vd" $(( ${rss[$tool]} / 1024 ))
  done
}

make_data
# Warm the page cache so every tool sees the same conditions.
cat "$dir/halfzero.raw" "$dir/random.raw" > /dev/null
run_case "half-zero 2 GiB" "$dir/halfzero.raw"
run_case "random 1 GiB" "$dir/random.raw"

echo
echo "== peak RSS, ferry copy (1 GiB random vs 16 GiB sparse with 1 GiB data)"
for src in random.raw sparse16g.raw; do
  r=$(best_of "$ferry" copy "$dir/$src" "$dir/out.raw" --progress none)
  printf "%-16s %8s s %7d MiB\n" "$src" "${r% *}" $(( ${r#* } / 1024 ))
done

echo
echo "== digest throughput (ferry checksum, warm cache, 1 GiB random)"
# --digest sha256 against sha256sum is like for like; the default (xxh3 leaves) beside it.
r=$(best_of "$ferry" checksum "$dir/random.raw" --digest sha256)
awk "BEGIN{printf \"ferry checksum --digest sha256: %.2f s = %.2f GB/s\n\", ${r% *}, 1.073741824/${r% *}}"
r=$(best_of "$ferry" checksum "$dir/random.raw")
awk "BEGIN{printf \"ferry checksum (xxh3):          %.2f s = %.2f GB/s\n\", ${r% *}, 1.073741824/${r% *}}"
r=$(best_of sha256sum "$dir/random.raw")
awk "BEGIN{printf \"sha256sum:                      %.2f s = %.2f GB/s\n\", ${r% *}, 1.073741824/${r% *}}"
rm -f "$dir/out.raw"
