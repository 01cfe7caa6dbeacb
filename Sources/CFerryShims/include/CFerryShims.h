// Thin C shims for what Swift cannot reach directly: Linux block-device ioctls,
// fallocate modes, a fast zero test, dlopen'd compression codecs, and signals and
// child processes for `ferry serve`.
#ifndef CFERRY_SHIMS_H
#define CFERRY_SHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// BLKGETSIZE64: size of a block device in bytes. Returns 0 or -errno.
int ferry_blk_getsize64(int fd, uint64_t *size);
/// BLKSSZGET: logical sector size. Returns 0 or -errno.
int ferry_blk_logical_sector_size(int fd, int *size);
/// BLKZEROOUT over [offset, offset+length). Returns 0 or -errno.
int ferry_blk_zeroout(int fd, uint64_t offset, uint64_t length);
/// BLKDISCARD over [offset, offset+length). Returns 0 or -errno.
int ferry_blk_discard(int fd, uint64_t offset, uint64_t length);
/// BLKFLSBUF: flush the buffer cache of a block device. Returns 0 or -errno.
int ferry_blk_flsbuf(int fd);

/// fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE). Returns 0 or -errno.
int ferry_punch_hole(int fd, off_t offset, off_t length);
/// fallocate(FALLOC_FL_ZERO_RANGE). Returns 0 or -errno.
int ferry_zero_range(int fd, off_t offset, off_t length);

/// lseek SEEK_DATA / SEEK_HOLE. Returns the offset, or -errno (ENXIO past the last data).
int64_t ferry_seek_data(int fd, int64_t offset);
int64_t ferry_seek_hole(int fd, int64_t offset);

/// 1 when all `length` bytes are zero. Vectorised through libc's memcmp.
int ferry_is_zero(const void *buffer, size_t length);

/// posix_fadvise(POSIX_FADV_DONTNEED) to drop pages we will not read again.
void ferry_fadvise_dontneed(int fd, off_t offset, off_t length);
/// sync_file_range(SYNC_FILE_RANGE_WRITE): start writeback of a range now, without waiting.
void ferry_start_writeback(int fd, off_t offset, off_t length);
/// sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER) then POSIX_FADV_DONTNEED: the range is on its
/// way to disk and its clean pages leave the page cache.
void ferry_finish_writeback_and_drop(int fd, off_t offset, off_t length);

/// posix_fadvise(POSIX_FADV_SEQUENTIAL).
void ferry_fadvise_sequential(int fd);

/// open(2) with flags; returns fd or -errno. (Swift's Glibc open is variadic.)
int ferry_open(const char *path, int flags, int mode);

/// The O_* constants Swift sees awkwardly on Linux.
int ferry_o_excl(void);
int ferry_o_direct(void);
int ferry_o_cloexec(void);

/// Major/minor of a dev_t, so we can match /proc/self/mountinfo and /sys/dev/block.
unsigned ferry_major(uint64_t dev);
unsigned ferry_minor(uint64_t dev);

/// dlopen a library by soname and look up a symbol. Returns NULL on failure;
/// `ferry_dlerror` then gives the loader's message.
void *ferry_dlopen(const char *soname);
void *ferry_dlsym(void *handle, const char *name);
const char *ferry_dlerror(void);

/// XXH3-128 from libxxhash.so.0 (loaded on first use, as the codecs are; Debian's apt
/// itself depends on libxxhash0, so every Debian host has it). `ferry_xxh3_load`
/// returns 1 when the library and its XXH3_128bits symbol are there, else 0;
/// `ferry_xxh3_128` then writes the hash of `length` bytes in XXH3's canonical form
/// (big-endian high 64 bits, then low 64 bits) to `out`.
int ferry_xxh3_load(void);
void ferry_xxh3_128(const void *data, size_t length, uint8_t out[16]);
/// XXH3-128 keyed by a custom secret (`XXH3_128bits_withSecret`; `secret_length` at least
/// 136 bytes, high-entropy), canonical form as above.
void ferry_xxh3_128_secret(const void *data, size_t length, const void *secret, size_t secret_length, uint8_t out[16]);

/// Installs a handler for each of `signals` (SA_RESTART) that writes two bytes to a
/// non-blocking, close-on-exec pipe: the signal number, and 1 when the kernel sent it (a
/// terminal's Ctrl-C, which reached the whole foreground process group) else 0 (kill(2)).
/// Unblocks them on the calling thread. Returns the pipe's read end, or -errno (-EBUSY on
/// a second call).
int ferry_signal_pipe(const int *signals, int count);

/// posix_spawn of `path` with every signal at its default disposition (an ignored SIGPIPE
/// is not inherited), an empty signal mask, and only fds 0-2 open. Returns 0 or -errno.
int ferry_spawn_clean(pid_t *pid, const char *path, char *const argv[], char *const envp[]);

#endif
