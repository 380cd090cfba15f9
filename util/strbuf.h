/* strbuf.h - a growing, NUL-terminated string buffer, and the shortest decimal
 * form of a double that reads back exactly.  Used wherever text is assembled
 * (generated headers, canonical JSON, genome text). */
#ifndef SH_UTIL_STRBUF_H
#define SH_UTIL_STRBUF_H

#include <stddef.h>

typedef struct sh_strbuf {
    char *data;      /* malloc'd, NUL-terminated; NULL while empty */
    size_t len, cap;
    int oom;         /* an allocation failed: later appends are ignored */
} sh_strbuf;

void sh_strbuf_add(sh_strbuf *b, const char *s, size_t n);
void sh_strbuf_puts(sh_strbuf *b, const char *s);
void sh_strbuf_printf(sh_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Shortest %g form of v that strtod reads back to exactly v.  With as_real,
 * a ".0" is appended when the text has no '.', exponent or nan/inf, so it
 * stays a floating literal in C and a real in JSON. */
void sh_fmt_double(double v, char *out, size_t cap, int as_real);

#endif
