/* Logging to a file or stderr (see log.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

static int log_fd = 2;
static log_level log_min = LOG_INFO;
static char log_component[32] = "flint";
static char log_path[PATH_MAX];   /* the log file's absolute path, "" when logging to stderr */

static const char *level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};

int log_init(const char *component, const char *path, log_level level) {
    snprintf(log_component, sizeof log_component, "%s", component ? component : "flint");
    log_min = level;
    if (!path) return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (log_fd > 2) close(log_fd);
    log_fd = fd;
    if (!realpath(path, log_path)) snprintf(log_path, sizeof log_path, "%s", path);
    return 0;
}

const char *log_file_path(void) { return log_path[0] ? log_path : NULL; }

int log_file_tail(int64_t max_bytes, char **data, size_t *len, int64_t *size) {
    *data = NULL;
    *len = 0;
    *size = 0;
    if (!log_path[0]) return -1;
    int fd = open(log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    int64_t from = max_bytes > 0 && st.st_size > max_bytes ? st.st_size - max_bytes : 0;
    size_t want = (size_t)(st.st_size - from);
    char *buf = malloc(want + 1);
    if (!buf) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(fd, buf + got, want - got, (off_t)(from + (int64_t)got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    *size = st.st_size;
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
