/* Status codes and error reports (see flint/status.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "flint/status.h"

static const char *status_text[] = {
#define STATUS_TEXT_(name, text) text,
    FLINT_STATUS_LIST(STATUS_TEXT_)
#undef STATUS_TEXT_
};

const char *flint_strerror(int status) {
    if (status < 0 || status >= FLINT_STATUS_COUNT_) return "unknown status";
    return status_text[status];
}

int flint_err_set(flint_err *err, int code, const char *fmt, ...) {
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void flint_err_prefix(flint_err *err, const char *fmt, ...) {
    if (!err) return;
    char joined[sizeof err->msg * 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof err->msg) n = (int)sizeof err->msg - 1;
    memcpy(joined + n, err->msg, sizeof err->msg);
    joined[sizeof joined - 1] = '\0';
    memcpy(err->msg, joined, sizeof err->msg - 1);
    err->msg[sizeof err->msg - 1] = '\0';
}
