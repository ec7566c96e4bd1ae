/* Logging to a file or stderr (see log.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

static int log_fd = 2;
static log_level log_min = LOG_INFO;
static char log_component[32] = "flint";

static const char *level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};

int log_init(const char *component, const char *path, log_level level) {
    snprintf(log_component, sizeof log_component, "%s", component ? component : "flint");
    log_min = level;
    if (!path) return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (log_fd > 2) close(log_fd);
    log_fd = fd;
    return 0;
}

void log_set_level(log_level level) { log_min = level; }
log_level log_get_level(void) { return log_min; }

int log_level_parse(const char *s) {
    for (int i = LOG_DEBUG; i <= LOG_OFF; i++)
        if (strcasecmp(s, level_names[i]) == 0) return i;
    if (strcasecmp(s, "warning") == 0) return LOG_WARN;
    return -1;
}

void log_shutdown(void) {
    if (log_fd > 2) close(log_fd);
    log_fd = 2;
}

void log_write(log_level level, const char *module, const char *fmt, ...) {
    if (level < log_min || level >= LOG_OFF) return;
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03d %-5s %s %s: ", (int)(tv.tv_usec / 1000),
                  level_names[level], log_component, module);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    n = (m < 0 || (size_t)(n + m) >= sizeof line - 1) ? (int)sizeof line - 2 : n + m;
    line[n++] = '\n';
    int saved = errno;
    ssize_t w = write(log_fd, line, (size_t)n);
    (void)w;
    errno = saved;
}
