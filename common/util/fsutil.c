/* File system helpers (fsutil.h). */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "util/alloc.h"
#include "util/fsutil.h"

/* Make one directory; an existing directory is fine. */
static int mkdir_one(const char *p, mode_t mode) {
    if (mkdir(p, mode) == 0) return 0;
    if (errno != EEXIST) return -1;
    struct stat st;
    if (stat(p, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int fs_mkdirs(const char *path, mode_t mode, char **failed) {
    char *p = xstrdup(path);
    int rc = 0;
    for (char *q = p + 1; *q && rc == 0; q++) {
        if (*q != '/') continue;
        *q = '\0';
        rc = mkdir_one(p, mode);
        if (rc == 0) *q = '/';
    }
    if (rc == 0) rc = mkdir_one(p, mode);
    int saved = errno;
    if (rc != 0 && failed) *failed = p;   /* cut at the part that failed */
    else free(p);
    errno = saved;
    return rc;
}
