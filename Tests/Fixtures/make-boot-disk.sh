#!/usr/bin/env bash
# Builds a 64 MiB MBR disk that boots under QEMU (TCG, no KVM) in seconds and prints
# FERRY-BOOTED on the first serial port, then powers off. Used by the "the migrated disk still
# boots" tests (Tests/FerryCommandsTests/BootTests.swift): copying it through ferry and booting
# the result checks that the MBR boot code, the partition table, the FAT volume, the boot loader
# and the kernel all arrived intact.
#
#   make-boot-disk.sh OUT.raw [--lba63]
#
# Layout (512-byte sectors):
#
#   LBA 0          syslinux mbr.bin (first 440 bytes) + partition table (sfdisk)
#   LBA START      FAT16 volume, type 0x06, active: ldlinux.sys/ldlinux.c32 (syslinux --install),
#                  syslinux.cfg, vmlinuz (Debian cloud kernel), initrd.gz (busybox-static /init)
#   ...            up to 64 MiB
#
# START is 2048 (1 MiB alignment) or, with --lba63, 63 (the old DOS/Windows XP layout).
#
# Where each piece comes from (Debian packages, nothing hand-made):
#   mbr.bin, ldlinux.*   syslinux-common, syslinux (/usr/lib/syslinux/mbr/mbr.bin, `syslinux`)
#   vmlinuz              the linux-image-*-cloud-amd64 package that linux-image-cloud-amd64
#                        depends on, fetched with `apt-get download` and unpacked with
#                        `dpkg-deb -x` (never installed)
#   busybox              busybox-static (/bin/busybox)
#   tools                mtools (mcopy), dosfstools (mkfs.fat), cpio, fdisk (sfdisk), gzip
#
# The kernel is cached under ${FERRY_BOOT_CACHE:-/var/tmp/ferry-boot-cache} so that repeated
# runs need neither the network nor a download.
#
# Exit status: 0 built; 77 a tool is missing or the kernel cannot be fetched (the tests print a
# SKIP line); anything else is a real failure.
set -euo pipefail

die() { echo "make-boot-disk: $*" >&2; exit 1; }
skip() { echo "make-boot-disk: $*" >&2; exit 77; }

out=${1:-}
[[ -n "$out" && "$out" != --* ]] || die "usage: make-boot-disk.sh OUT.raw [--lba63]"
start=2048
case "${2:-}" in
"") ;;
--lba63) start=63 ;;
*) die "unknown option '${2}' (expected --lba63)" ;;
esac

# Tool -> Debian package, so a missing tool names what to install.
declare -A package=(
    [syslinux]=syslinux [mcopy]=mtools [mkfs.fat]=dosfstools [cpio]=cpio [sfdisk]=fdisk
    [gzip]=gzip [dpkg-deb]=dpkg [apt-get]=apt [apt-cache]=apt [truncate]=coreutils [dd]=coreutils
)
for tool in "${!package[@]}"; do
    PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 ||
        skip "missing tool: $tool (apt-get install ${package[$tool]})"
done
export PATH="$PATH:/usr/sbin:/sbin"
mbr_bin=""
for candidate in /usr/lib/syslinux/mbr/mbr.bin /usr/share/syslinux/mbr.bin /usr/lib/SYSLINUX/mbr.bin; do
    [[ -f "$candidate" ]] && { mbr_bin=$candidate; break; }
done
[[ -n "$mbr_bin" ]] || skip "missing /usr/lib/syslinux/mbr/mbr.bin (apt-get install syslinux-common)"
busybox=""
for candidate in /bin/busybox /usr/bin/busybox; do
    # Only a static busybox works inside an initramfs that carries no libc.
    if [[ -x "$candidate" ]] && ! LC_ALL=C ldd "$candidate" >/dev/null 2>&1; then busybox=$candidate; break; fi
done
[[ -n "$busybox" ]] || skip "missing a static busybox (apt-get install busybox-static)"

# ---- the kernel: cached, fetched once with apt-get download ---------------------------------
cache=${FERRY_BOOT_CACHE:-/var/tmp/ferry-boot-cache}
mkdir -p "$cache" || die "cannot create cache directory $cache"
kernel="$cache/vmlinuz"
if [[ ! -s "$kernel" ]]; then
    # linux-image-cloud-amd64 is a metapackage; its Depends names the versioned image package.
    image=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [[ -n "$image" ]] || skip "apt-cache knows no linux-image-cloud-amd64 dependency (run apt-get update?)"
    work=$(mktemp -d "$cache/fetch.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get download "$image" >"$work/download.log" 2>&1) ||
        skip "apt-get download $image failed (no Debian mirror?): $(tail -n 2 "$work/download.log")"
    deb=$(ls "$work"/*.deb 2>/dev/null | head -n 1)
    [[ -n "$deb" ]] || die "apt-get download $image produced no .deb"
    dpkg-deb -x "$deb" "$work/root" || die "dpkg-deb -x $deb failed"
    found=$(ls "$work"/root/boot/vmlinuz-* 2>/dev/null | head -n 1)
    [[ -n "$found" ]] || die "$deb holds no boot/vmlinuz-*"
    cp "$found" "$kernel.tmp" && mv "$kernel.tmp" "$kernel"
    echo "$image $(basename "$found")" >"$cache/vmlinuz.source"
    rm -rf "$work"
    trap - EXIT
fi

# ---- build in a scratch directory beside OUT -------------------------------------------------
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ferry-boot.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# initramfs: /init writes the marker to the serial port and powers off at once, so a boot
# that works ends QEMU by itself (-no-reboot) and the marker is the last serial line.
mkdir -p "$scratch/initrd/bin" "$scratch/initrd/dev" "$scratch/initrd/proc"
cp "$busybox" "$scratch/initrd/bin/busybox"
cat >"$scratch/initrd/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
echo FERRY-BOOTED > /dev/ttyS0
/bin/busybox sync
/bin/busybox poweroff -f
EOF
chmod 0755 "$scratch/initrd/init"
# Fixed times and owners keep the archive the same from run to run.
find "$scratch/initrd" -exec touch -h -d @0 {} +
(cd "$scratch/initrd" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet | gzip -n -9) >"$scratch/initrd.gz"

cat >"$scratch/syslinux.cfg" <<'EOF'
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  APPEND initrd=initrd.gz console=ttyS0 quiet panic=-1
EOF

# FAT16 volume filling the disk from START to the end. The BPB's hidden-sectors field must be
# START: syslinux's boot sector adds it to find ldlinux.sys.
disk_sectors=$((64 * 2048))
part_sectors=$((disk_sectors - start))
fat="$scratch/fat.img"
truncate -s $((part_sectors * 512)) "$fat"
SOURCE_DATE_EPOCH=946684800 mkfs.fat -F 16 -n FERRYBOOT -i 46455252 -h "$start" "$fat" >/dev/null || die "mkfs.fat failed"
export MTOOLS_SKIP_CHECK=1
cp "$kernel" "$scratch/vmlinuz"
# FAT cannot store 1970; 2000-01-01 keeps the directory entries the same from run to run.
touch -d @946684800 "$scratch/vmlinuz" "$scratch/initrd.gz" "$scratch/syslinux.cfg"
mcopy -m -i "$fat" "$scratch/vmlinuz" ::vmlinuz || die "mcopy vmlinuz failed"
mcopy -m -i "$fat" "$scratch/initrd.gz" ::initrd.gz || die "mcopy initrd.gz failed"
mcopy -m -i "$fat" "$scratch/syslinux.cfg" ::syslinux.cfg || die "mcopy syslinux.cfg failed"
syslinux --install "$fat" || die "syslinux --install failed"

# The disk: partition table, the volume at START, syslinux's MBR code in bytes 0-439 (the
# table at 446 and the signature at 510 stay as sfdisk wrote them).
rm -f "$out"
truncate -s $((disk_sectors * 512)) "$out"
printf "label: dos\nlabel-id: 0x46455252\nstart=%d, size=%d, type=6, bootable\n" "$start" "$part_sectors" | sfdisk -q --label dos "$out" >/dev/null ||
    die "sfdisk failed"
dd if="$fat" of="$out" bs=512 seek="$start" conv=notrunc,sparse status=none || die "dd of the volume failed"
dd if="$mbr_bin" of="$out" bs=440 count=1 conv=notrunc status=none || die "dd of mbr.bin failed"
echo "make-boot-disk: $out (partition at LBA $start, kernel $(cat "$cache/vmlinuz.source" 2>/dev/null || echo cached))"
