#include "CFerryZlib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <zlib.h>

int ferry_inflate(const void *src, size_t src_len, void *dst, size_t dst_len, int window_bits, size_t *produced) {
    z_stream s;
    memset(&s, 0, sizeof s);
    *produced = 0;
    if (src_len > UINT32_MAX || dst_len > UINT32_MAX) return FERRY_Z_CORRUPT;
    if (inflateInit2(&s, window_bits) != Z_OK) return FERRY_Z_NOMEM;
    s.next_in = (Bytef *)src;
    s.avail_in = (uInt)src_len;
    s.next_out = (Bytef *)dst;
    s.avail_out = (uInt)dst_len;
    int r = inflate(&s, Z_FINISH);
    *produced = dst_len - s.avail_out;
    inflateEnd(&s);
    // A full output buffer is success even if the stream has more to say (Z_BUF_ERROR
    // or Z_OK): the caller asked for exactly one cluster or grain.
    if (s.avail_out == 0 && (r == Z_STREAM_END || r == Z_BUF_ERROR || r == Z_OK)) return FERRY_Z_OK;
    if (r == Z_STREAM_END) return FERRY_Z_SHORT;
    if (r == Z_MEM_ERROR) return FERRY_Z_NOMEM;
    if (r == Z_BUF_ERROR) return FERRY_Z_TRUNCATED;
    return FERRY_Z_CORRUPT;
}

int ferry_deflate(const void *src, size_t src_len, void *dst, size_t dst_len, int window_bits, int level, size_t *produced) {
    z_stream s;
    memset(&s, 0, sizeof s);
    *produced = 0;
    if (src_len > UINT32_MAX || dst_len > UINT32_MAX) return FERRY_Z_CORRUPT;
    if (deflateInit2(&s, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return FERRY_Z_NOMEM;
    s.next_in = (Bytef *)src;
    s.avail_in = (uInt)src_len;
    s.next_out = (Bytef *)dst;
    s.avail_out = (uInt)dst_len;
    int r = deflate(&s, Z_FINISH);
    *produced = dst_len - s.avail_out;
    deflateEnd(&s);
    return r == Z_STREAM_END ? FERRY_Z_OK : FERRY_Z_SHORT;
}

// The zstd streaming API, declared here so no zstd headers are needed at build time
// (the ABI of these structs is stable since zstd 1.3).
typedef struct { const void *src; size_t size; size_t pos; } ferry_zstd_in;
typedef struct { void *dst; size_t size; size_t pos; } ferry_zstd_out;
typedef void *(*zstd_create_fn)(void);
typedef size_t (*zstd_free_fn)(void *);
typedef size_t (*zstd_stream_fn)(void *, ferry_zstd_out *, ferry_zstd_in *);
typedef unsigned (*zstd_iserror_fn)(size_t);

static struct {
    zstd_create_fn create;
    zstd_free_fn free;
    zstd_stream_fn stream;
    zstd_iserror_fn is_error;
} zstd;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;

static void zstd_load(void) {
    void *h = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    zstd.create = (zstd_create_fn)dlsym(h, "ZSTD_createDCtx");
    zstd.free = (zstd_free_fn)dlsym(h, "ZSTD_freeDCtx");
    zstd.stream = (zstd_stream_fn)dlsym(h, "ZSTD_decompressStream");
    zstd.is_error = (zstd_iserror_fn)dlsym(h, "ZSTD_isError");
}

int ferry_zstd_decompress(const void *src, size_t src_len, void *dst, size_t dst_len, size_t *produced) {
    *produced = 0;
    pthread_once(&zstd_once, zstd_load);
    if (!zstd.create || !zstd.free || !zstd.stream || !zstd.is_error) return FERRY_Z_UNAVAILABLE;
    void *ctx = zstd.create();
    if (!ctx) return FERRY_Z_NOMEM;
    ferry_zstd_in in = {src, src_len, 0};
    ferry_zstd_out out = {dst, dst_len, 0};
    int result = FERRY_Z_TRUNCATED;
    // Each call consumes input or produces output; stop when the output is full, the
    // frame ends, or the input is exhausted, so the loop always terminates.
    for (;;) {
        size_t before_in = in.pos, before_out = out.pos;
        size_t r = zstd.stream(ctx, &out, &in);
        if (zstd.is_error(r)) { result = FERRY_Z_CORRUPT; break; }
        if (out.pos == out.size) { result = FERRY_Z_OK; break; }
        if (r == 0) { result = FERRY_Z_SHORT; break; }
        if (in.pos == in.size || (in.pos == before_in && out.pos == before_out)) { result = FERRY_Z_TRUNCATED; break; }
    }
    *produced = out.pos;
    zstd.free(ctx);
    return result;
}
