/* The jobmanager's content-addressed artifact store (see jm_artifacts.h). Files are written to a
 * temporary name and renamed, so a reader never sees half an artifact. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MODULE "artifacts"
#include "jm_artifacts.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/sha256.h"

struct jm_artifacts {
    char *root;   /* <tmp>/flint-jm-<id> */
    char *dir;    /* <root>/artifacts */
};

static bool is_sha(const char *s) {
    if (!s || strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static int make_dir(const char *path, flint_err *err) {
    if (mkdir(path, 0700) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
        return flint_err_set(err, FLINT_IO, "cannot create directory %s: not a directory", path);
    }
    return flint_err_set(err, FLINT_IO, "cannot create directory %s: %s", path, strerror(errno));
}

jm_artifacts *jm_artifacts_open(const char *tmp_dirs, const char *jm_id, flint_err *err) {
    assert(jm_id && jm_id[0]);
    if (!tmp_dirs || !tmp_dirs[0]) tmp_dirs = "/tmp";
    size_t n = strcspn(tmp_dirs, ";,:");
    char *tmp = xstrndup(tmp_dirs, n);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = '\0';
    if (!tmp[0]) {
        free(tmp);
        flint_err_set(err, FLINT_CONFIG, "io.tmp.dirs: no directory in '%s'", tmp_dirs);
        return NULL;
    }
    jm_artifacts *a = XNEW(jm_artifacts);
    a->root = xasprintf("%s/flint-jm-%s", tmp, jm_id);
    a->dir = xasprintf("%s/artifacts", a->root);
    free(tmp);
    if (make_dir(a->root, err) || make_dir(a->dir, err)) {
        flint_err_prefix(err, "artifact store (io.tmp.dirs): ");
        rmdir(a->root);
        free(a->root);
        free(a->dir);
        free(a);
        return NULL;
    }
    log_debug("artifact store in %s", a->dir);
    return a;
}

const char *jm_artifacts_dir(const jm_artifacts *a) { return a->dir; }

void jm_artifacts_close(jm_artifacts *a) {
    if (!a) return;
    DIR *d = opendir(a->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = xasprintf("%s/%s", a->dir, e->d_name);
            if (unlink(p) != 0) log_warn("cannot remove %s: %s", p, strerror(errno));
            free(p);
        }
        closedir(d);
    }
    if (rmdir(a->dir) != 0 && errno != ENOENT) log_warn("cannot remove %s: %s", a->dir, strerror(errno));
    if (rmdir(a->root) != 0 && errno != ENOENT) log_warn("cannot remove %s: %s", a->root, strerror(errno));
    free(a->root);
    free(a->dir);
    free(a);
}

static char *path_of(const jm_artifacts *a, const char *sha) { return xasprintf("%s/%s.so", a->dir, sha); }

bool jm_artifacts_has(const jm_artifacts *a, const char *sha) {
    if (!is_sha(sha)) return false;
    char *p = path_of(a, sha);
    bool ok = access(p, R_OK) == 0;
    free(p);
    return ok;
}

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int jm_artifacts_put(jm_artifacts *a, const void *data, size_t len, const char *sha, flint_err *err) {
    assert(a && (data || len == 0));
    if (!is_sha(sha))
        return flint_err_set(err, FLINT_INVALID, "Invalid artifact sha256 '%.80s': expected 64 "
                             "lower-case hex digits", sha ? sha : "");
    char actual[SHA256_HEX_LEN];
    sha256_hex(data, len, actual);
    if (strcmp(actual, sha) != 0)
        return flint_err_set(err, FLINT_INVALID, "The uploaded artifact (%zu bytes) has sha256 %s, but "
                             "the job graph names %s", len, actual, sha);
    if (jm_artifacts_has(a, sha)) return 0;
    char *final = path_of(a, sha);
    char *tmp = xasprintf("%s/.%s.tmp", a->dir, sha);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        rc = flint_err_set(err, FLINT_IO, "cannot write artifact %s: %s", tmp, strerror(errno));
    }
    if (fd >= 0 && close(fd) != 0 && !rc)
        rc = flint_err_set(err, FLINT_IO, "cannot write artifact %s: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, final) != 0)
        rc = flint_err_set(err, FLINT_IO, "cannot store artifact %s: %s", final, strerror(errno));
    if (rc) unlink(tmp);
    else log_info("stored artifact %s (%zu bytes)", sha, len);
    free(tmp);
    free(final);
    return rc;
}

int jm_artifacts_get(const jm_artifacts *a, const char *sha, void **data, size_t *len, flint_err *err) {
    assert(a && data && len);
    *data = NULL;
    *len = 0;
    if (!is_sha(sha))
        return flint_err_set(err, FLINT_NOT_FOUND, "Artifact '%.80s' not found", sha ? sha : "");
    char *p = path_of(a, sha);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(p);
        if (e == ENOENT) return flint_err_set(err, FLINT_NOT_FOUND, "Artifact %s not found", sha);
        return flint_err_set(err, FLINT_IO, "cannot read artifact %s: %s", sha, strerror(e));
    }
    struct stat st;
    int rc = 0;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        rc = flint_err_set(err, FLINT_IO, "cannot read artifact %s: %s", p, strerror(errno));
    } else {
        size_t n = (size_t)st.st_size, got = 0;
        buf = xmalloc(n ? n : 1);
        while (got < n) {
            ssize_t r = read(fd, buf + got, n - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                rc = flint_err_set(err, FLINT_IO, "cannot read artifact %s: %s", p,
                                   r < 0 ? strerror(errno) : "file shrank");
                break;
            }
            got += (size_t)r;
        }
        if (!rc) {
            *data = buf;
            *len = n;
            buf = NULL;
        }
    }
    free(buf);
    close(fd);
    free(p);
    return rc;
}
