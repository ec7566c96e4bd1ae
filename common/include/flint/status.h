/* Flint's status codes: one list for the whole project, shared by the runtime and job authors.
 * Functions that can fail return a flint_status (0 = FLINT_OK) and, where they take one, fill a
 * flint_err with a message the caller can show as it is. */
#ifndef FLINT_STATUS_H
#define FLINT_STATUS_H

/* X(name, text): the name becomes FLINT_<name>; the value is its position in the list. */
#define FLINT_STATUS_LIST(X)                                         \
    X(OK, "ok")                                                      \
    X(ERR, "error")                                                  \
    X(NOMEM, "out of memory")                                        \
    X(INVALID, "invalid argument")                                   \
    X(CONFIG, "configuration error")                                 \
    X(IO, "i/o error")                                               \
    X(PROTOCOL, "protocol error")                                    \
    X(TIMEOUT, "timed out")                                          \
    X(CLOSED, "connection closed")                                   \
    X(UNAVAILABLE, "unavailable")                                    \
    X(NOT_FOUND, "not found")                                        \
    X(EXISTS, "already exists")                                      \
    X(TOO_LARGE, "too large")                                        \
    X(STATE, "illegal state")                                        \
    X(UNSUPPORTED, "not supported")                                  \
    X(CANCELED, "canceled")

typedef enum flint_status {
#define FLINT_STATUS_ENUM_(name, text) FLINT_##name,
    FLINT_STATUS_LIST(FLINT_STATUS_ENUM_)
#undef FLINT_STATUS_ENUM_
    FLINT_STATUS_COUNT_
} flint_status;

/* The text of a status code ("timed out"); never NULL, also for codes outside the list. */
const char *flint_strerror(int status);

/* An error report: the status and a message that reads on its own ("heartbeat.timeout: expected a
 * duration such as '50 s', got 'soon'"). Callers own it, usually on the stack. */
typedef struct flint_err {
    int code;
    char msg[512];
} flint_err;

/* Fill *err (if not NULL) with code and a printf-style message; returns code so that callers can
 * write `return flint_err_set(err, FLINT_CONFIG, "...")`. */
int flint_err_set(flint_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the message already in *err with a printf-style context ("conf/flint.yaml:3: ..."). */
void flint_err_prefix(flint_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
