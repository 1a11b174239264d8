/*
 * buf: a growable byte buffer, always NUL-terminated, with an optional cap.
 *
 * Anything whose size a client controls goes into a buf with the AWS limit as
 * its cap; appends past the cap fail with -EMSGSIZE and leave the buf as it was.
 * A zeroed struct buf (BUF_INIT) is a valid empty buffer; buf_release frees it.
 */
#ifndef IGNIS_CORE_BUF_H
#define IGNIS_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* NUL-terminated when non-NULL */
    size_t len;
    size_t alloc;
    size_t cap; /* 0 = unlimited */
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        0                                                                                          \
    }

void buf_init(struct buf *b, size_t cap);
void buf_release(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps memory */
int buf_grow(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Hands the bytes to the caller (who frees them) and leaves b empty. */
char *buf_detach(struct buf *b, size_t *len);
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);

#endif
