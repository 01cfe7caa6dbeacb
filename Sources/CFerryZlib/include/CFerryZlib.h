// A tiny C surface over zlib (linked) and libzstd (dlopen'd on first use), so the
// image readers can inflate compressed clusters and grains without Swift touching
// z_stream's layout.
#ifndef CFERRY_ZLIB_H
#define CFERRY_ZLIB_H

#include <stddef.h>
#include <stdint.h>

/// Result codes shared by the functions below.
#define FERRY_Z_OK 0           /* output buffer filled (or stream ended exactly at its end) */
#define FERRY_Z_SHORT 1        /* the stream ended before filling the output; *produced says how much */
#define FERRY_Z_CORRUPT (-1)   /* the compressed data is invalid */
#define FERRY_Z_TRUNCATED (-2) /* the input ran out before the stream ended or the output filled */
#define FERRY_Z_NOMEM (-3)
#define FERRY_Z_UNAVAILABLE (-4) /* the codec library could not be loaded */

/// Inflates `src` into `dst`. `window_bits` follows zlib: -12..-15 raw deflate
/// (qcow2), 15 zlib-wrapped (VMDK stream grains). Stops once `dst` is full.
int ferry_inflate(const void *src, size_t src_len, void *dst, size_t dst_len, int window_bits, size_t *produced);

/// Deflates `src` into `dst` (used by writers and test builders). Returns
/// FERRY_Z_OK with *produced set, or FERRY_Z_SHORT when `dst` is too small.
int ferry_deflate(const void *src, size_t src_len, void *dst, size_t dst_len, int window_bits, int level, size_t *produced);

/// Decompresses one zstd frame from `src` (trailing padding allowed) into `dst`,
/// stopping once `dst` is full. libzstd.so.1 is loaded on first use.
int ferry_zstd_decompress(const void *src, size_t src_len, void *dst, size_t dst_len, size_t *produced);

#endif
