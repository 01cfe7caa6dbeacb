#!/usr/bin/env bash
# Proof that the release binary runs where users need it (issues 10 and 17): a minimal Debian
# root (debootstrap --variant=minbase: no Swift, no dev packages) gets only the stripped
# binary, and inside it, with chroot, ferry runs --version, checksum, copy of a VMDK, inspect,
# and a send to a `ferry receive` outside. Each result is compared with what the host's tools
# say (qemu-img convert/compare, cmp, the same binary run outside). Three rounds:
#   proc      /proc mounted
#   noproc    no /proc (issue 17): --version and --help work (argv without /proc/self/cmdline);
#             every command refuses at once with one line and exit 72 (libdispatch's thread
#             pool traps without /proc/TID/stat) and writes nothing
#   nocodecs  /proc mounted, libzstd.so.1 and libxxhash.so.0 removed from the root
#
#   sudo Scripts/chroot-test.sh dist/ferry-VERSION-x86_64-linux
#
# Needs root, debootstrap, qemu-img, sfdisk, mkfs.ext4. The root is cached as a tarball in
# $FERRY_CI_CACHE (default /var/cache/ferry-ci); the first run makes it (network, ~3 min).
set -euo pipefail

bin=$(readlink -f "${1:?usage: chroot-test.sh FERRY_BINARY}")
[ -x "$bin" ] || { echo "chroot-test: $bin is not an executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "chroot-test: needs root (chroot, mount)" >&2; exit 2; }
for tool in debootstrap qemu-img sfdisk mkfs.ext4 cmp; do
  command -v "$tool" > /dev/null || { echo "chroot-test: $tool is not installed" >&2; exit 2; }
done

cache=${FERRY_CI_CACHE:-/var/cache/ferry-ci}
rootfs="$cache/debootstrap-bookworm-minbase.tar"
mirror=${FERRY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/ferry-chroot.XXXXXX)
root="$work/root"
receiver=""
failures=0
started=$SECONDS

cleanup() {
  if [ -n "$receiver" ]; then kill "$receiver" 2> /dev/null || true; fi
  if mountpoint -q "$root/proc" 2> /dev/null; then umount "$root/proc"; fi
  if [ -d "$work/build/proc" ] && mountpoint -q "$work/build/proc"; then umount "$work/build/proc"; fi
  if [ -n "${FERRY_CHROOT_KEEP:-}" ]; then echo "chroot-test: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

pass() { echo "  ok   $1"; }
fail() { echo "  FAIL $1" >&2; failures=$((failures + 1)); }

# The root, made once per machine and unpacked fresh for every run.
if [ ! -s "$rootfs" ]; then
  echo "chroot-test: debootstrap --variant=minbase bookworm (cached in $rootfs)"
  mkdir -p "$cache"
  debootstrap --variant=minbase bookworm "$work/build" "$mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  tar -C "$work/build" -cf "$rootfs.partial" . && mv "$rootfs.partial" "$rootfs"
  rm -rf "$work/build"
fi
mkdir "$root"
tar -C "$root" -xf "$rootfs"
if [ -e "$root/usr/bin/swift" ] || ls "$root"/usr/lib/swift* > /dev/null 2>&1 \
  || ls "$root"/usr/lib/x86_64-linux-gnu/libswiftCore* > /dev/null 2>&1; then
  echo "chroot-test: the root has a Swift runtime; it must not" >&2
  exit 1
fi
install -m 0755 "$bin" "$root/usr/local/bin/ferry"

# Fixtures, made outside with the host's tools: a GPT disk with an ext4 partition holding a
# few MiB of files, as a sparse VMDK; the raw reference is qemu-img's conversion of it.
data="$root/data"
mkdir -p "$data" "$work/files"
head -c $((3 << 20)) /dev/urandom > "$work/files/payload.bin"
echo "ferry chroot test" > "$work/files/README"
truncate -s 64M "$work/disk.raw"
echo 'label: gpt
start=2048, size=120832, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4' | sfdisk -q "$work/disk.raw"
mkfs.ext4 -q -F -L ferrytest -d "$work/files" -E offset=$((2048 * 512)) "$work/disk.raw" $((120832 / 2))k
qemu-img convert -f raw -O vmdk "$work/disk.raw" "$data/disk.vmdk"
qemu-img convert -f vmdk -O raw "$data/disk.vmdk" "$work/reference.raw"
expected_version=$("$bin" --version)
# SHA-256 (blkhash's digest) is the same with or without libxxhash in the root.
expected_sum=$("$bin" checksum --digest sha256 "$work/reference.raw" | cut -d' ' -f1)
# inspect names the path it was given: the same path as inside.
(cd "$root" && "$bin" inspect data/disk.vmdk) | sed 's|^Source: data/|Source: /data/|' > "$work/inspect.expected"
grep -q 'GPT' "$work/inspect.expected" && grep -q 'ext4' "$work/inspect.expected" \
  || { echo "chroot-test: ferry inspect outside does not see the GPT and ext4:" >&2; cat "$work/inspect.expected" >&2; exit 1; }

# `ferry ARGS…` inside the root; stdout and stderr to files named after the step.
inside() {
  local step=$1; shift
  chroot "$root" /usr/local/bin/ferry "$@" > "$work/$step.out" 2> "$work/$step.err"
}
show() { sed 's/^/         /' "$work/$1.out" "$work/$1.err" | head -20 >&2; }

round() {
  local name=$1
  local round_started=$SECONDS
  echo "chroot-test: round $name"

  if inside "$name-version" --version && [ "$(cat "$work/$name-version.out")" = "$expected_version" ]; then
    pass "ferry --version: $expected_version"
  else fail "ferry --version (expected '$expected_version')"; show "$name-version"; fi

  if inside "$name-checksum" checksum --digest sha256 /data/disk.vmdk \
    && [ "$(cut -d' ' -f1 "$work/$name-checksum.out")" = "$expected_sum" ]; then
    pass "ferry checksum of the VMDK equals the digest of qemu-img's raw conversion"
  else fail "ferry checksum"; show "$name-checksum"; fi

  if inside "$name-copy" copy /data/disk.vmdk "/data/copy-$name.raw" --progress none \
    && cmp -s "$data/copy-$name.raw" "$work/reference.raw" \
    && qemu-img compare -q -f vmdk -F raw "$data/disk.vmdk" "$data/copy-$name.raw"; then
    pass "ferry copy VMDK → raw: cmp and qemu-img compare agree"
  else fail "ferry copy"; show "$name-copy"; fi
  rm -f "$data/copy-$name.raw"

  if inside "$name-inspect" inspect /data/disk.vmdk && cmp -s "$work/$name-inspect.out" "$work/inspect.expected"; then
    pass "ferry inspect: the same report as outside"
  else fail "ferry inspect"; diff "$work/inspect.expected" "$work/$name-inspect.out" >&2 || true; show "$name-inspect"; fi

  # The receiver runs outside on an ephemeral port; the sender inside connects over loopback.
  local code
  code=$( (tr -dc '0-9abcdefghjkmnpqrstvwxyz' < /dev/urandom | head -c 16) || true)
  : > "$work/$name-receive.log"
  "$bin" receive "$work/received-$name.raw" --listen 127.0.0.1:0 --code "$code" --progress none \
    > "$work/$name-receive.log" 2>&1 &
  receiver=$!
  local port="" tries=0
  while [ -z "$port" ] && [ $tries -lt 300 ] && kill -0 "$receiver" 2> /dev/null; do
    port=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$work/$name-receive.log" | head -1 | cut -d: -f2 || true)
    [ -n "$port" ] || { sleep 0.1; tries=$((tries + 1)); }
  done
  if [ -z "$port" ]; then
    fail "ferry receive outside printed no port"; cat "$work/$name-receive.log" >&2
    kill "$receiver" 2> /dev/null || true
  else
    local sent=0 received=0
    inside "$name-send" send /data/disk.vmdk "127.0.0.1:$port" --code "$code" --progress none || sent=$?
    # Hang guard only: the receiver ends by itself once the sender is done.
    for _ in $(seq 600); do kill -0 "$receiver" 2> /dev/null || break; sleep 0.1; done
    kill "$receiver" 2> /dev/null || true
    wait "$receiver" || received=$?
    if [ $sent = 0 ] && [ $received = 0 ] && cmp -s "$work/received-$name.raw" "$work/reference.raw"; then
      pass "ferry send inside → ferry receive outside: cmp with qemu-img's conversion agrees"
    else
      fail "ferry send (exit $sent) → receive (exit $received)"; show "$name-send"; cat "$work/$name-receive.log" >&2
    fi
  fi
  receiver=""
  rm -f "$work/received-$name.raw"
  echo "chroot-test: round $name took $((SECONDS - round_started)) s"
}

mount -t proc proc "$root/proc"
round proc

umount "$root/proc"
echo "chroot-test: round noproc"
if inside noproc-version --version && [ "$(cat "$work/noproc-version.out")" = "$expected_version" ]; then
  pass "ferry --version: $expected_version"
else fail "ferry --version without /proc"; show noproc-version; fi
if inside noproc-help copy --help && grep -q 'ferry copy win2003.vmdk' "$work/noproc-help.out"; then
  pass "ferry copy --help shows the copy command's help"
else fail "ferry copy --help without /proc"; show noproc-help; fi
# Each command: exit 72, one line naming /proc, nothing written.
for step in "checksum /data/disk.vmdk" "copy /data/disk.vmdk /data/copy-noproc.raw" "inspect /data/disk.vmdk" \
  "send /data/disk.vmdk 127.0.0.1:9 --code 0000-0000-0000-0000" "copy" "nonsense"; do
  status=0
  # shellcheck disable=SC2086 # the step is words on purpose
  inside noproc-step $step || status=$?
  if [ $status = 72 ] && [ "$(wc -l < "$work/noproc-step.err")" = 1 ] && grep -q '/proc is not mounted' "$work/noproc-step.err" \
    && [ ! -s "$work/noproc-step.out" ] && [ -z "$(ls -A "$data" | grep -v '^disk.vmdk$')" ]; then
    pass "ferry $step: exit 72, '$(cat "$work/noproc-step.err")'"
  else fail "ferry $step without /proc (exit $status)"; show noproc-step; ls -la "$data" >&2; fi
done

mount -t proc proc "$root/proc"
mkdir "$work/hidden"
mv "$root"/usr/lib/x86_64-linux-gnu/libzstd.so.1* "$root"/usr/lib/x86_64-linux-gnu/libxxhash.so.0* "$work/hidden/"
round nocodecs
# Without libxxhash, checksum's default digest is SHA-256, and it says nothing about it.
if inside nocodecs-default checksum /data/disk.vmdk \
  && [ "$(cut -d' ' -f1 "$work/nocodecs-default.out")" = "$expected_sum" ] && ! grep -qi 'xxh' "$work/nocodecs-default.err"; then
  pass "ferry checksum without libxxhash falls back to SHA-256 silently"
else fail "ferry checksum's default without libxxhash"; show nocodecs-default; fi
# The sender says what it does without them.
if grep -qi 'xxh\|zstd' "$work/nocodecs-send.err"; then
  pass "ferry send names the missing codecs: $(grep -i 'xxh\|zstd' "$work/nocodecs-send.err" | head -2 | paste -sd ' ')"
else fail "ferry send without libzstd/libxxhash did not say what it does without them"; show nocodecs-send; fi

echo "chroot-test: $((SECONDS - started)) s in all, $failures failure(s)"
[ $failures = 0 ]
