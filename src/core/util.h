/*
 * util: small pure helpers shared by every subsystem: clocks, random ids,
 * hex/base64, SHA-256, percent-decoding, timestamps in AWS's formats.
 */
#ifndef IGNIS_CORE_UTIL_H
#define IGNIS_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

int64_t now_ms(void);  /* wall clock, ms since epoch */
int64_t mono_us(void); /* monotonic clock, µs */
void random_bytes(void *out, size_t n);
void uuid_v4(char out[37]); /* 8-4-4-4-12 lowercase hex */
void hex_encode(const unsigned char *in, size_t n, char *out /* 2n+1 */);
/* Base64 (standard alphabet, padded). decode returns -EINVAL on bad input. */
int base64_encode(struct buf *out, const void *in, size_t n);
int base64_decode(struct buf *out, const char *in, size_t n);
void sha256(const void *in, size_t n, unsigned char out[32]);
void sha256_hex(const void *in, size_t n, char out[65]);
/* The value of one hex digit (either case), or -1. */
int hex_digit_value(int c);
/* Percent-decodes in place ('+' stays '+'); returns new length or -EINVAL. */
long percent_decode(char *s, size_t n);
/* "2015-03-31T12:00:00.000+0000", the format Lambda uses for LastModified. */
void format_lambda_time(int64_t ms, char out[32]);
/* "2024-01-01T00:00:00.000Z" (ISO 8601, UTC, ms). */
void format_iso8601_ms(int64_t ms, char out[32]);
/* A timestamp as AWS clients send them: ISO 8601 ("2024-01-01T00:00:00Z", with optional
 * fraction and a Z or +hh:mm offset, or a bare date) or epoch seconds; 0 or -EINVAL. */
int parse_timestamp_ms(const char *s, int64_t *out_ms);
/* Writes all n bytes (retrying short writes and EINTR): 0 or -errno. */
int write_all(int fd, const void *buf, size_t n);
int str_has_prefix(const char *s, const char *prefix);
int str_has_suffix(const char *s, const char *suffix);

#endif
