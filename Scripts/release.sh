#!/usr/bin/env bash
# Builds the release binary for rescue systems (issue 10): one file that runs on a bare
# Linux with glibc, no Swift installed.
#
#   Scripts/release.sh [VERSION]      → dist/ferry-VERSION-x86_64-linux and its .sha256
#
# The Swift runtime and Foundation are linked in (--static-swift-stdlib); glibc, zlib and the
# C++ runtime stay shared, and the codecs (libzstd.so.1, liblz4.so.1, libxxhash.so.0) are
# dlopen'd by soname at run time, so a host without them still runs ferry (it says what it
# does without them). VERSION defaults to the one in Sources/CFerryLaunch/build_info.c; the git
# commit (with "-dirty" for uncommitted changes) goes into `ferry --version` either way.
# Prints the sizes, the shared libraries it needs and the newest glibc symbol version it
# references: the oldest glibc it runs on.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${FERRY_DIST:-dist}
commit=$(git rev-parse --short=12 HEAD)
if ! git diff --quiet HEAD -- Package.swift Sources; then commit+="-dirty"; fi
export FERRY_COMMIT=$commit
if [ -n "${1:-}" ]; then export FERRY_VERSION=$1; fi

# The static Linux SDK (musl) would also drop glibc; use it when it is installed here.
build=(swift build -c release --product ferry)
if swift sdk list 2>/dev/null | grep -q 'static-linux'; then
  build+=(--swift-sdk x86_64-swift-linux-musl)
else
  build+=(--static-swift-stdlib)
fi
echo "release: ${build[*]} (FERRY_COMMIT=$FERRY_COMMIT${FERRY_VERSION:+ FERRY_VERSION=$FERRY_VERSION})" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "${build[@]}" > "$log" 2>&1; then
  grep -Ev '^\[[0-9]+/[0-9]+\] ' "$log" | tail -40 >&2
  echo "release: the build failed" >&2
  exit 1
fi
bin="$("${build[@]}" --show-bin-path)/ferry"

version=$("$bin" --version | cut -d' ' -f1)
case "$("$bin" --version)" in
  *"(commit $FERRY_COMMIT)") ;;
  *) echo "release: $bin --version does not name commit $FERRY_COMMIT (the build did not pick it up)" >&2; exit 1 ;;
esac
name="ferry-$version-x86_64-linux"
mkdir -p "$out"
strip --strip-all -o "$out/$name" "$bin"
(cd "$out" && sha256sum "$name" > "$name.sha256")

mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
needed=$(objdump -p "$out/$name" | awk '/NEEDED/ { print $2 }' | paste -sd ' ')
glibc=$(objdump -T "$out/$name" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -1)
# Foundation comes with ICU's data (~34 MiB) unless only FoundationEssentials is imported.
nm -S "$bin" > "$log.nm" 2> /dev/null || true
foundation=no
if grep -q ' icudt[0-9]*_dat$' "$log.nm"; then
  icu=$(grep -m1 ' icudt[0-9]*_dat$' "$log.nm" | cut -d' ' -f2)
  foundation="yes, with ICU data ($(awk -v b=$((16#$icu)) 'BEGIN { printf "%.1f MiB", b / 1048576 }'))"
elif grep -q ' [$]s10Foundation' "$log.nm"; then foundation="yes, without ICU"; fi
rm -f "$log.nm"

echo "release: $out/$name"
echo "  version:   $("$out/$name" --version)"
echo "  size:      $(mib "$bin") unstripped, $(mib "$out/$name") stripped (rescue-CD budget 64 MiB)"
echo "  sha256:    $(cut -d' ' -f1 "$out/$name.sha256")"
echo "  needs:     $needed"
echo "  glibc:     $glibc or newer (the newest symbol version it references)"
echo "  Foundation linked: $foundation"
