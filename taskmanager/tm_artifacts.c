/* The taskmanager's artifact cache and per-job loading (see tm_artifacts.h). */
#include <assert.h>
#include <dirent.h>
#include <dlfcn.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MODULE "artifacts"
#include "tm_artifacts.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/strutil.h"

/* A task waiting for its job's artifact. */
typedef struct waiter {
    char *job_id;
    tm_artifact_fn fn;
    void *ud;
    struct waiter *next;
} waiter;

/* A FetchArtifact under way, with the tasks that wait for it. */
typedef struct fetch {
    tm_artifacts *a;
    char sha[SHA256_HEX_LEN];
    waiter *waiters;
    struct fetch *next;
} fetch;

/* A job's loaded artifact. */
typedef struct job {
    char *job_id;
    char sha[SHA256_HEX_LEN];
    void *dl;
    int refs;                  /* tasks holding it */
    bool released;             /* ReleaseJob came */
    struct job *next;
} job;

struct tm_artifacts {
    char *root;                /* <tmp>/flint-tm-<pid> */
    char *dir;                 /* root/artifacts */
    fetch *fetches;
    job *jobs;
};

static bool valid_sha(const char *sha) {
    if (strlen(sha) != 64) return false;
    for (const char *p = sha; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    return true;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw);

/* Remove the directories that taskmanagers killed before they could clean up left in tmp
 * (flint-tm-<pid> of a process that no longer exists). */
static void remove_stale(const char *tmp) {
    DIR *d = opendir(tmp);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "flint-tm-", 9) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + 9, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char *path = xasprintf("%s/%s", tmp, e->d_name);
        log_info("removing %s, left by a taskmanager that is gone", path);
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(path);
    }
    closedir(d);
}

tm_artifacts *tm_artifacts_new(const char *tmp_dirs, flint_err *err) {
    char *first = xstrdup(tmp_dirs && tmp_dirs[0] ? tmp_dirs : "/tmp");
    char *semi = strchr(first, ';');
    if (semi) *semi = '\0';
    str_trim(first);
    if (!first[0]) {
        free(first);
        first = xstrdup("/tmp");
    }
    remove_stale(first);
    tm_artifacts *a = XNEW(tm_artifacts);
    a->root = xasprintf("%s/flint-tm-%ld", first, (long)getpid());
    a->dir = xasprintf("%s/artifacts", a->root);
    free(first);
    if ((mkdir(a->root, 0700) != 0 && errno != EEXIST) || (mkdir(a->dir, 0700) != 0 && errno != EEXIST)) {
        flint_err_set(err, FLINT_IO, "cannot create the artifact cache %s (io.tmp.dirs): %s", a->dir, strerror(errno));
        free(a->root);
        free(a->dir);
        free(a);
        return NULL;
    }
    return a;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    if (remove(path) != 0) log_warn("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

void tm_artifacts_free(tm_artifacts *a) {
    if (!a) return;
    assert(!a->fetches);
    for (job *j = a->jobs, *next; j; j = next) {
        next = j->next;
        if (j->dl) dlclose(j->dl);
        free(j->job_id);
        free(j);
    }
    nftw(a->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(a->root);
    free(a->dir);
    free(a);
}

const char *tm_artifacts_dir(const tm_artifacts *a) { return a->dir; }

static job *find_job(const tm_artifacts *a, const char *job_id) {
    for (job *j = a->jobs; j; j = j->next)
        if (strcmp(j->job_id, job_id) == 0) return j;
    return NULL;
}

static void unlink_job(tm_artifacts *a, job *dead) {
    for (job **pp = &a->jobs; *pp; pp = &(*pp)->next)
        if (*pp == dead) {
            *pp = dead->next;
            break;
        }
    if (dead->dl) {
        log_info("unloading artifact %.12s of job %s", dead->sha, dead->job_id);
        dlclose(dead->dl);
    }
    free(dead->job_id);
    free(dead);
}

static char *artifact_path(const tm_artifacts *a, const char *sha) { return xasprintf("%s/%s.so", a->dir, sha); }

/* dlopen the cached file for j (once). */
static int load(tm_artifacts *a, job *j, char *msg, size_t msglen) {
    if (j->dl) return FLINT_OK;
    char *path = artifact_path(a, j->sha);
    dlerror();
    j->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    free(path);
    if (!j->dl) {
        const char *e = dlerror();
        snprintf(msg, msglen, "cannot load artifact %s: %s", j->sha, e ? e : "unknown error");
        return FLINT_INVALID;
    }
    log_info("loaded artifact %.12s for job %s", j->sha, j->job_id);
    return FLINT_OK;
}

/* Load j's artifact and tell the waiter. */
static void complete(tm_artifacts *a, waiter *w, int status, const char *error) {
    job *j = find_job(a, w->job_id);
    char msg[600];
    void *dl = NULL;
    if (status == FLINT_OK) {
        if (!j) {
            status = FLINT_STATE;
            snprintf(msg, sizeof msg, "job %s was released while its artifact was fetched", w->job_id);
            error = msg;
        } else if ((status = load(a, j, msg, sizeof msg)) != FLINT_OK) {
            error = msg;
        } else {
            dl = j->dl;
        }
    }
    w->fn(status, error, dl, w->ud);
}

static fetch *find_fetch(tm_artifacts *a, const char *sha) {
    for (fetch *f = a->fetches; f; f = f->next)
        if (strcmp(f->sha, sha) == 0) return f;
    return NULL;
}

/* Write data to the cache as <sha>.so (through a temporary file and a rename). */
static int store(tm_artifacts *a, const char *sha, const uint8_t *data, size_t len, char *msg, size_t msglen) {
    char *path = artifact_path(a, sha);
    char *tmp = xasprintf("%s.tmp", path);
    int rc = FLINT_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    if (fd < 0) {
        snprintf(msg, msglen, "cannot write %s: %s", tmp, strerror(errno));
        rc = FLINT_IO;
    } else {
        size_t off = 0;
        while (off < len) {
            ssize_t n = write(fd, data + off, len - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                snprintf(msg, msglen, "cannot write %s: %s", tmp, strerror(errno));
                rc = FLINT_IO;
                break;
            }
            off += (size_t)n;
        }
        if (close(fd) != 0 && !rc) {
            snprintf(msg, msglen, "cannot write %s: %s", tmp, strerror(errno));
            rc = FLINT_IO;
        }
        if (!rc && rename(tmp, path) != 0) {
            snprintf(msg, msglen, "cannot rename %s: %s", tmp, strerror(errno));
            rc = FLINT_IO;
        }
        if (rc) unlink(tmp);
    }
    free(tmp);
    free(path);
    return rc;
}

void tm_artifacts_deliver(tm_artifacts *a, const char *sha, int status, const char *error,
                          const uint8_t *data, size_t len) {
    fetch *f = find_fetch(a, sha);
    if (!f) return;
    for (fetch **pp = &a->fetches; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    char msg[600];
    if (status == FLINT_OK) {
        char hex[SHA256_HEX_LEN];
        sha256_hex(data, len, hex);
        if (strcmp(hex, sha) != 0) {
            snprintf(msg, sizeof msg, "artifact %s from the jobmanager has sha256 %s (%zu bytes)", sha, hex, len);
            status = FLINT_PROTOCOL;
            error = msg;
        } else if ((status = store(a, sha, data, len, msg, sizeof msg)) != FLINT_OK) {
            error = msg;
        } else {
            log_info("fetched artifact %.12s (%zu bytes)", sha, len);
        }
    } else {
        snprintf(msg, sizeof msg, "cannot fetch artifact %s from the jobmanager: %s", sha, error ? error : flint_strerror(status));
        error = msg;
    }
    if (status != FLINT_OK) log_warn("%s", error);
    while (f->waiters) {
        waiter *w = f->waiters;
        f->waiters = w->next;
        complete(a, w, status, error);
        free(w->job_id);
        free(w);
    }
    free(f);
}

static void on_fetch_reply(rpc_conn *c, int status, const char *msg, rpc_envelope *reply, void *ud) {
    (void)c;
    fetch *f = ud;
    if (status == FLINT_OK && reply->body_case != FLINT__RPC__ENVELOPE__BODY_FETCH_ARTIFACT_RESPONSE) {
        status = FLINT_PROTOCOL;
        msg = "unexpected answer to FetchArtifact";
    }
    if (status == FLINT_OK) {
        ProtobufCBinaryData *b = &reply->fetch_artifact_response->artifact;
        tm_artifacts_deliver(f->a, f->sha, FLINT_OK, NULL, b->data, b->len);
    } else {
        tm_artifacts_deliver(f->a, f->sha, status, msg, NULL, 0);
    }
}

void tm_artifacts_acquire(tm_artifacts *a, rpc_conn *jm, int64_t timeout_ms, const char *job_id,
                          const char *sha, tm_artifact_fn fn, void *ud) {
    if (!sha || !sha[0]) {
        fn(FLINT_OK, NULL, NULL, ud);
        return;
    }
    char msg[600];
    if (!valid_sha(sha)) {
        snprintf(msg, sizeof msg, "bad artifact sha256 '%.80s'", sha);
        fn(FLINT_INVALID, msg, NULL, ud);
        return;
    }
    job *j = find_job(a, job_id);
    if (!j) {
        j = XNEW(job);
        j->job_id = xstrdup(job_id);
        snprintf(j->sha, sizeof j->sha, "%s", sha);
        j->next = a->jobs;
        a->jobs = j;
    } else if (strcmp(j->sha, sha) != 0) {
        j->refs++;
        snprintf(msg, sizeof msg, "job %s has artifact %.12s, not %.12s", job_id, j->sha, sha);
        fn(FLINT_INVALID, msg, NULL, ud);
        return;
    }
    j->refs++;
    j->released = false;
    waiter w0 = {.job_id = (char *)job_id, .fn = fn, .ud = ud};
    char *path = artifact_path(a, sha);
    bool cached = access(path, R_OK) == 0;
    free(path);
    if (j->dl || cached) {
        complete(a, &w0, FLINT_OK, NULL);
        return;
    }
    waiter *w = XNEW(waiter);
    w->job_id = xstrdup(job_id);
    w->fn = fn;
    w->ud = ud;
    fetch *f = find_fetch(a, sha);
    if (f) { /* already under way: wait with the others */
        w->next = f->waiters;
        f->waiters = w;
        return;
    }
    f = XNEW(fetch);
    f->a = a;
    snprintf(f->sha, sizeof f->sha, "%s", sha);
    f->waiters = w;
    f->next = a->fetches;
    a->fetches = f;
    if (!jm) {
        tm_artifacts_deliver(a, sha, FLINT_CLOSED, "not connected to the jobmanager", NULL, 0);
        return;
    }
    Flint__Rpc__FetchArtifact req = FLINT__RPC__FETCH_ARTIFACT__INIT;
    req.sha256 = f->sha;
    rpc_envelope env = FLINT__RPC__ENVELOPE__INIT;
    env.body_case = FLINT__RPC__ENVELOPE__BODY_FETCH_ARTIFACT;
    env.fetch_artifact = &req;
    log_info("fetching artifact %.12s for job %s", sha, job_id);
    int rc = rpc_call(jm, &env, timeout_ms, on_fetch_reply, f);
    if (rc) tm_artifacts_deliver(a, sha, rc, flint_strerror(rc), NULL, 0);
}

void tm_artifacts_put(tm_artifacts *a, const char *job_id) {
    job *j = find_job(a, job_id);
    if (!j) return;
    if (j->refs > 0) j->refs--;
    if (j->refs == 0 && j->released) unlink_job(a, j);
}

void tm_artifacts_release_job(tm_artifacts *a, const char *job_id) {
    job *j = find_job(a, job_id);
    if (!j) return;
    j->released = true;
    if (j->refs == 0) unlink_job(a, j);
}

void tm_artifacts_release_all(tm_artifacts *a) {
    for (job *j = a->jobs, *next; j; j = next) {
        next = j->next;
        j->released = true;
        if (j->refs == 0) unlink_job(a, j);
    }
}

bool tm_artifacts_job_loaded(const tm_artifacts *a, const char *job_id) {
    job *j = find_job(a, job_id);
    return j && j->dl;
}
