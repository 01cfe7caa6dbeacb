#define _GNU_SOURCE
#include "CFerryShims.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int ferry_blk_getsize64(int fd, uint64_t *size) {
    return ioctl(fd, BLKGETSIZE64, size) == 0 ? 0 : -errno;
}

int ferry_blk_logical_sector_size(int fd, int *size) {
    return ioctl(fd, BLKSSZGET, size) == 0 ? 0 : -errno;
}

int ferry_blk_zeroout(int fd, uint64_t offset, uint64_t length) {
    uint64_t range[2] = {offset, length};
    return ioctl(fd, BLKZEROOUT, range) == 0 ? 0 : -errno;
}

int ferry_blk_discard(int fd, uint64_t offset, uint64_t length) {
    uint64_t range[2] = {offset, length};
    return ioctl(fd, BLKDISCARD, range) == 0 ? 0 : -errno;
}

int ferry_blk_flsbuf(int fd) {
    return ioctl(fd, BLKFLSBUF, 0) == 0 ? 0 : -errno;
}

int ferry_punch_hole(int fd, off_t offset, off_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) == 0 ? 0 : -errno;
}

int ferry_zero_range(int fd, off_t offset, off_t length) {
    return fallocate(fd, FALLOC_FL_ZERO_RANGE, offset, length) == 0 ? 0 : -errno;
}

int64_t ferry_seek_data(int fd, int64_t offset) {
    off_t r = lseek(fd, offset, SEEK_DATA);
    return r < 0 ? -errno : r;
}

int64_t ferry_seek_hole(int fd, int64_t offset) {
    off_t r = lseek(fd, offset, SEEK_HOLE);
    return r < 0 ? -errno : r;
}

// The classic trick (also in nbdkit's is_zero): check a short prefix by hand,
// then compare the buffer with itself shifted by that prefix; glibc's memcmp
// is AVX2/AVX-512 vectorised, so this runs at memory bandwidth.
int ferry_is_zero(const void *buffer, size_t length) {
    const unsigned char *p = buffer;
    const size_t prefix = 16;
    size_t i;
    for (i = 0; i < prefix && i < length; i++) {
        if (p[i] != 0) return 0;
    }
    if (length <= prefix) return 1;
    return memcmp(p, p + prefix, length - prefix) == 0;
}

void ferry_fadvise_dontneed(int fd, off_t offset, off_t length) {
    (void)posix_fadvise(fd, offset, length, POSIX_FADV_DONTNEED);
}

void ferry_start_writeback(int fd, off_t offset, off_t length) {
    (void)sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}

void ferry_finish_writeback_and_drop(int fd, off_t offset, off_t length) {
    (void)sync_file_range(fd, offset, length,
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    (void)posix_fadvise(fd, offset, length, POSIX_FADV_DONTNEED);
}

void ferry_fadvise_sequential(int fd) {
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

int ferry_open(const char *path, int flags, int mode) {
    int fd = open(path, flags, mode);
    return fd < 0 ? -errno : fd;
}

int ferry_o_excl(void) { return O_EXCL; }
int ferry_o_direct(void) { return O_DIRECT; }
int ferry_o_cloexec(void) { return O_CLOEXEC; }

unsigned ferry_major(uint64_t dev) { return major((dev_t)dev); }
unsigned ferry_minor(uint64_t dev) { return minor((dev_t)dev); }

void *ferry_dlopen(const char *soname) { return dlopen(soname, RTLD_NOW | RTLD_LOCAL); }
void *ferry_dlsym(void *handle, const char *name) { return dlsym(handle, name); }
const char *ferry_dlerror(void) { return dlerror(); }

/* XXH128_hash_t XXH3_128bits(const void *data, size_t len): the struct is returned by
 * value, which Swift cannot call through a function pointer, hence this shim. */
typedef struct {
    uint64_t low64;
    uint64_t high64;
} ferry_xxh128_t;
typedef ferry_xxh128_t (*ferry_xxh3_128_fn)(const void *, size_t);
typedef ferry_xxh128_t (*ferry_xxh3_128_secret_fn)(const void *, size_t, const void *, size_t);

static pthread_once_t xxh3_once = PTHREAD_ONCE_INIT;
static ferry_xxh3_128_fn xxh3_128;
static ferry_xxh3_128_secret_fn xxh3_128_secret;

static void xxh3_resolve(void) {
    void *handle = dlopen("libxxhash.so.0", RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) return;
    /* Both or neither: a library without the keyed entry point (older than 0.8) counts as absent. */
    ferry_xxh3_128_fn plain = (ferry_xxh3_128_fn)dlsym(handle, "XXH3_128bits");
    ferry_xxh3_128_secret_fn keyed = (ferry_xxh3_128_secret_fn)dlsym(handle, "XXH3_128bits_withSecret");
    if (plain != NULL && keyed != NULL) {
        xxh3_128 = plain;
        xxh3_128_secret = keyed;
    }
}

int ferry_xxh3_load(void) {
    pthread_once(&xxh3_once, xxh3_resolve);
    return xxh3_128 != NULL;
}

static void xxh3_canonical(ferry_xxh128_t h, uint8_t out[16]) {
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(h.high64 >> (56 - 8 * i));
        out[8 + i] = (uint8_t)(h.low64 >> (56 - 8 * i));
    }
}

static void xxh3_require(void) {
    /* Callers check ferry_xxh3_load() first (LeafHash.loaded()); a path that did not must
     * still never jump through a null pointer, nor hash wrongly: resolve here, and stop with
     * a message if the library is absent. pthread_once costs a load and a compare once done. */
    if (!ferry_xxh3_load()) {
        fputs("ferry: internal error: an xxh3 digest was computed without libxxhash.so.0\n", stderr);
        abort();
    }
}

void ferry_xxh3_128_secret(const void *data, size_t length, const void *secret, size_t secret_length, uint8_t out[16]) {
    xxh3_require();
    xxh3_canonical(xxh3_128_secret(data, length, secret, secret_length), out);
}

void ferry_xxh3_128(const void *data, size_t length, uint8_t out[16]) {
    xxh3_require();
    xxh3_canonical(xxh3_128(data, length), out);
}
