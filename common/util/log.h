/* Logging: one line per event, "2026-11-22 02:45:16.123 INFO  jobmanager rm: text", written with
 * a single write(2) so lines from several threads never interleave. A daemon logs to its own file
 * (scripts pass --log-file); everything else logs to stderr. */
#ifndef FLINT_LOG_H
#define FLINT_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF } log_level;

/* Set the process's component name ("jobmanager") and destination. path NULL means stderr.
 * Returns 0, or -1 with errno set when the file cannot be opened (logging stays on stderr). */
int log_init(const char *component, const char *path, log_level level);
void log_set_level(log_level level);
log_level log_get_level(void);
/* Parse "debug", "info", "warn", "error", "off" (any case); -1 if none of them. */
int log_level_parse(const char *s);
/* The log file's absolute path, or NULL when logging to stderr. */
const char *log_file_path(void);
/* The last max_bytes bytes (<= 0: all) of this process's own log file: *data (caller frees,
 * NUL-terminated), *len bytes of it, *size the file's whole size. -1 when there is no log file or
 * it cannot be read. Only ever this file: callers never pass a path. */
int log_file_tail(int64_t max_bytes, char **data, size_t *len, int64_t *size);
/* Close the log file (if any) and go back to stderr. */
void log_shutdown(void);

void log_write(log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Each file that logs defines LOG_MODULE ("rpc", "rm", ...) before including this header. */
#ifndef LOG_MODULE
#define LOG_MODULE "flint"
#endif
#define log_debug(...) \
    do { if (log_get_level() <= LOG_DEBUG) log_write(LOG_DEBUG, LOG_MODULE, __VA_ARGS__); } while (0)
#define log_info(...) log_write(LOG_INFO, LOG_MODULE, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, LOG_MODULE, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, LOG_MODULE, __VA_ARGS__)

#endif
