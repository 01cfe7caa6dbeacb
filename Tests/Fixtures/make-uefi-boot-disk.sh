#!/usr/bin/env bash
# Builds a 64 MiB GPT disk that boots under QEMU with OVMF (UEFI, TCG) and prints FERRY-BOOTED
# on the first serial port, then powers off: the UEFI variant of make-boot-disk.sh, used by
# `ferry plan`'s QEMU boot test for an EFI guest (Tests/FerryCommandsTests/PlanBootTests.swift).
#
#   make-uefi-boot-disk.sh OUT.raw
#
# Layout (512-byte sectors):
#
#   LBA 0–33       protective MBR, GPT header and entries (sfdisk)
#   LBA 2048       EFI system partition (C12A7328-…), FAT16: vmlinuz, initrd.gz, startup.nsh
#   ...            backup GPT at the end of the 64 MiB
#
# The loader is the firmware's own: with no boot entry and no \EFI\BOOT\BOOTX64.EFI, OVMF starts
# its UEFI shell, which runs startup.nsh; that starts the kernel's EFI stub with the initrd and
# a serial console. The kernel and the initramfs are the ones make-boot-disk.sh builds (run here
# into a scratch file and read back with mcopy), so both disks boot the same guest.
#
# Exit status: 0 built; 77 a tool or the kernel is missing (tests print SKIP); else a failure.
set -euo pipefail

die() { echo "make-uefi-boot-disk: $*" >&2; exit 1; }
skip() { echo "make-uefi-boot-disk: $*" >&2; exit 77; }

out=${1:-}
[[ -n "$out" && "$out" != --* ]] || die "usage: make-uefi-boot-disk.sh OUT.raw"
export PATH="$PATH:/usr/sbin:/sbin" MTOOLS_SKIP_CHECK=1
for tool in mcopy mkfs.fat sfdisk truncate dd; do
    command -v "$tool" >/dev/null 2>&1 || skip "missing tool: $tool"
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/ferry-uefi-boot.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
status=0
bash "$(dirname "$0")/make-boot-disk.sh" "$scratch/bios.raw" >"$scratch/bios.log" 2>&1 || status=$?
[[ $status -eq 77 ]] && skip "$(cat "$scratch/bios.log")"
[[ $status -eq 0 ]] || die "make-boot-disk.sh failed: $(cat "$scratch/bios.log")"
# The BIOS disk's FAT volume starts at 1 MiB.
mcopy -i "$scratch/bios.raw@@1M" ::vmlinuz "$scratch/vmlinuz" || die "cannot read vmlinuz back"
mcopy -i "$scratch/bios.raw@@1M" ::initrd.gz "$scratch/initrd.gz" || die "cannot read initrd.gz back"
# The UEFI shell reads startup.nsh with CRLF line ends; fs0: is the first file system, the ESP.
printf 'fs0:\r\n\\vmlinuz initrd=\\initrd.gz console=ttyS0 quiet panic=-1\r\n' >"$scratch/startup.nsh"

start=2048
disk_sectors=$((64 * 2048))
part_sectors=$((disk_sectors - start - 34))
fat="$scratch/esp.img"
truncate -s $((part_sectors * 512)) "$fat"
SOURCE_DATE_EPOCH=946684800 mkfs.fat -F 16 -n FERRYESP -i 46455253 "$fat" >/dev/null || die "mkfs.fat failed"
touch -d @946684800 "$scratch/vmlinuz" "$scratch/initrd.gz" "$scratch/startup.nsh"
for f in vmlinuz initrd.gz startup.nsh; do mcopy -m -i "$fat" "$scratch/$f" "::$f" || die "mcopy $f failed"; done

rm -f "$out"
truncate -s $((disk_sectors * 512)) "$out"
printf "label: gpt\nlabel-id: 46455252-0000-4000-8000-000000000001\nstart=%d, size=%d, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=46455252-0000-4000-8000-000000000002, name=ESP\n" \
    "$start" "$part_sectors" | sfdisk -q --label gpt "$out" >/dev/null || die "sfdisk failed"
dd if="$fat" of="$out" bs=512 seek="$start" conv=notrunc,sparse status=none || die "dd of the ESP failed"
echo "make-uefi-boot-disk: $out (GPT, ESP at LBA $start)"
