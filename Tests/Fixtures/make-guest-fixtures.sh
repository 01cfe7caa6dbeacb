#!/usr/bin/env bash
# Builds guest disk images for ferry's inspection tests from a directory tree, with the
# real tools (mkntfs + an ntfs-3g FUSE mount, sfdisk, sgdisk, mkfs.*). Nothing is hand-made:
# the tests write the registry hives with ferry's HiveBuilder into TREE first.
#
#   make-guest-fixtures.sh ntfs OUT LAYOUT TREE [SIZE_MIB]
#       NTFS volume holding a copy of TREE, laid out as LAYOUT:
#         mbr63   MBR, one active NTFS partition at LBA 63 (XP/2003 style, 255/63 geometry)
#         mbr1m   MBR, one active NTFS partition at 1 MiB (Vista+ style)
#         gpt     GPT, Microsoft basic data partition at 1 MiB
#         volume  the bare NTFS volume, no partition table (a partition-only copy)
#         moved   MBR at 1 MiB holding a volume made for LBA 63 (hidden sectors 63): a partition
#                 copied into a new partition table, the seed's unbootable copy
#         volume4k  a bare NTFS volume with 4096-byte sectors and MFT records (4Kn)
#   make-guest-fixtures.sh ntfs-attrlist OUT
#       Bare NTFS volume with /big.bin carrying 60 named streams (user.* xattrs through
#       ntfs-3g): its attributes spill into extension records behind an $ATTRIBUTE_LIST.
#   make-guest-fixtures.sh ntfs-fragmented OUT HOLES
#       32 MiB bare NTFS volume (4 KiB clusters): /SYSTEM (40,000 bytes of 0x5A), then 2×HOLES
#       one-cluster files /f/NNNNN.bin written in order, every other one deleted, so the free
#       space after them is a comb of one-cluster holes (for the in-place write tests).
#   make-guest-fixtures.sh ntfs-read IMG PATH OUT
#       Mounts IMG read-only with ntfs-3g (FUSE) and copies the file at PATH to OUT (an oracle
#       for the write tests; done here because ntfs-3g daemonizes).
#   make-guest-fixtures.sh linux OUT
#       MBR disk: ext4 (active), swap, logical FAT32 and ext3 in an extended partition.
#
# Exit 77 when a tool or FUSE is unavailable (the tests print a SKIP line).
set -euo pipefail

need() { for t in "$@"; do command -v "$t" >/dev/null 2>&1 || { echo "missing tool: $t" >&2; exit 77; }; done; }
mib=$((1024 * 1024))

# place VOLUME_IMG at byte offset START of DISK_IMG
place() { dd if="$1" of="$2" bs=1M seek="$3" oflag=seek_bytes conv=notrunc,sparse status=none; }

ntfs_volume() {   # ntfs_volume IMG SIZE_MIB HIDDEN_SECTORS TREE [MKNTFS_ARGS...]
    need mkntfs ntfs-3g fusermount
    truncate -s $(($2 * mib)) "$1"
    mkntfs -F -f -q -p "$3" -H 255 -S 63 -L FERRYTEST "${@:5}" "$1" >/dev/null 2>&1
    local mnt
    mnt=$(mktemp -d)
    if ! ntfs-3g "$1" "$mnt" 2>/dev/null; then rmdir "$mnt"; echo "ntfs-3g FUSE mount failed (needs /dev/fuse and root)" >&2; exit 77; fi
    cp -r "$4"/. "$mnt"/
    sync
    umount "$mnt" 2>/dev/null || fusermount -u "$mnt"
    rmdir "$mnt"
}

case "${1:-}" in
ntfs)
    rm -f "$2"
    out=$2 layout=$3 tree=$4 size=${5:-24}
    need sfdisk sgdisk
    vol="$out.vol"
    case "$layout" in
    mbr63)
        ntfs_volume "$vol" "$size" 63 "$tree"
        truncate -s $(((size + 2) * mib)) "$out"
        echo "start=63, size=$((size * 2048)), type=7, bootable" | sfdisk -q "$out"
        place "$vol" "$out" $((63 * 512)) ;;
    mbr1m)
        ntfs_volume "$vol" "$size" 2048 "$tree"
        truncate -s $(((size + 2) * mib)) "$out"
        echo "start=2048, size=$((size * 2048)), type=7, bootable" | sfdisk -q "$out"
        place "$vol" "$out" $mib ;;
    moved)
        ntfs_volume "$vol" "$size" 63 "$tree"
        truncate -s $(((size + 2) * mib)) "$out"
        echo "start=2048, size=$((size * 2048)), type=7, bootable" | sfdisk -q "$out"
        place "$vol" "$out" $mib ;;
    gpt)
        ntfs_volume "$vol" "$size" 2048 "$tree"
        truncate -s $(((size + 2) * mib)) "$out"
        sgdisk -n 1:2048:+$((size * 2048 - 1)) -t 1:0700 "$out" >/dev/null
        place "$vol" "$out" $mib ;;
    volume)
        ntfs_volume "$vol" "$size" 63 "$tree"
        mv "$vol" "$out" ;;
    volume4k)
        ntfs_volume "$vol" "$size" 0 "$tree" -s 4096 -c 4096
        mv "$vol" "$out" ;;
    *) echo "unknown layout $layout" >&2; exit 2 ;;
    esac
    rm -f "$vol" ;;
ntfs-attrlist)
    rm -f "$2"
    need mkntfs ntfs-3g fusermount python3
    truncate -s $((12 * mib)) "$2"
    mkntfs -F -f -q -L ATTRLIST "$2" >/dev/null 2>&1
    mnt=$(mktemp -d)
    if ! ntfs-3g "$2" "$mnt" 2>/dev/null; then rmdir "$mnt"; echo "ntfs-3g FUSE mount failed (needs /dev/fuse and root)" >&2; exit 77; fi
    head -c 300000 /dev/urandom > "$mnt/big.bin"
    # ntfs-3g stores user.* xattrs as named $DATA streams; 60 of them overflow the 1 KiB record.
    python3 -c 'import os, sys
for i in range(60): os.setxattr(sys.argv[1], "user.stream%02d" % i, b"value-of-stream-%02d" % i)' "$mnt/big.bin"
    sync
    umount "$mnt" 2>/dev/null || fusermount -u "$mnt"
    rmdir "$mnt" ;;
ntfs-fragmented)
    rm -f "$2"
    need mkntfs ntfs-3g fusermount python3
    truncate -s $((32 * mib)) "$2"
    mkntfs -F -f -q -c 4096 -L FRAGMENTED "$2" >/dev/null 2>&1
    mnt=$(mktemp -d)
    if ! ntfs-3g "$2" "$mnt" 2>/dev/null; then rmdir "$mnt"; echo "ntfs-3g FUSE mount failed (needs /dev/fuse and root)" >&2; exit 77; fi
    head -c 40000 /dev/zero | tr '\0' 'Z' > "$mnt/SYSTEM"
    python3 -c 'import os, sys
d = os.path.join(sys.argv[1], "f"); n = 2 * int(sys.argv[2]); os.mkdir(d)
for i in range(n):
    with open(os.path.join(d, "%05d.bin" % i), "wb") as f: f.write(b"f" * 4096)
for i in range(1, n, 2): os.remove(os.path.join(d, "%05d.bin" % i))' "$mnt" "$3"
    sync
    umount "$mnt" 2>/dev/null || fusermount -u "$mnt"
    rmdir "$mnt" ;;
ntfs-read)
    need ntfs-3g fusermount
    mnt=$(mktemp -d)
    if ! ntfs-3g -o ro "$2" "$mnt" >/dev/null 2>&1; then rmdir "$mnt"; echo "ntfs-3g FUSE mount failed (needs /dev/fuse and root)" >&2; exit 77; fi
    status=0
    cp "$mnt/$3" "$4" || status=1
    umount "$mnt" 2>/dev/null || fusermount -u "$mnt"
    rmdir "$mnt"
    exit $status ;;
linux)
    rm -f "$2"
    out=$2
    need sfdisk mkfs.ext4 mkfs.ext3 mkswap mkfs.vfat
    truncate -s $((64 * mib)) "$out"
    sfdisk -q "$out" <<'LAYOUT'
start=2048, size=32768, type=83, bootable
start=34816, size=8192, type=82
start=43008, size=86016, type=5
start=45056, size=32768, type=c
start=79872, size=40960, type=83
LAYOUT
    tmp=$(mktemp -d)
    mkfs.ext4 -q -F -L rootfs -U 0a0b0c0d-1111-2222-3333-444455556666 "$tmp/p1" 16M >/dev/null
    truncate -s 4M "$tmp/p2"; chmod 600 "$tmp/p2"; mkswap -L swapper "$tmp/p2" >/dev/null 2>&1
    truncate -s 16M "$tmp/p5"; mkfs.vfat -F 32 -n FATDATA -i 1234abcd "$tmp/p5" >/dev/null 2>&1
    mkfs.ext3 -q -F -L olddata "$tmp/p6" 20M >/dev/null
    place "$tmp/p1" "$out" $((2048 * 512))
    place "$tmp/p2" "$out" $((34816 * 512))
    place "$tmp/p5" "$out" $((45056 * 512))
    place "$tmp/p6" "$out" $((79872 * 512))
    rm -rf "$tmp" ;;
*)
    sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
