/* The one allocation wrapper: every heap allocation in Flint goes through these, and running out
 * of memory aborts with a log line instead of returning NULL to callers that would not cope. */
#ifndef FLINT_ALLOC_H
#define FLINT_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocate one zeroed T. */
#define XNEW(T) ((T *)xcalloc(1, sizeof(T)))

#endif
