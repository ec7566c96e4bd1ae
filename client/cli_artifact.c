/* Job artifacts on the client side: loading, symbol checks, bytes and hash (see cli_artifact.h). */
#include "cli_artifact.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "graph/graph.h"
#include "util/alloc.h"

int cli_artifact_open(cli_artifact *a, const char *path, flint_err *err) {
    memset(a, 0, sizeof *a);
    a->path = path;
    struct stat st;
    if (stat(path, &st) != 0) return flint_err_set(err, FLINT_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return flint_err_set(err, FLINT_INVALID, "%s: not a regular file", path);
    /* A bare file name would make dlopen search the library path instead of opening the file. */
    char *p = strchr(path, '/') ? xstrdup(path) : xasprintf("./%s", path);
    dlerror();
    a->handle = dlopen(p, RTLD_NOW | RTLD_LOCAL);
    if (!a->handle) {
        const char *why = dlerror();
        if (!why) why = "dlopen failed";
        /* dlerror says "<path>: <reason>"; the path is in our message already. */
        size_t plen = strlen(p);
        if (strncmp(why, p, plen) == 0 && strncmp(why + plen, ": ", 2) == 0) why += plen + 2;
        flint_err_set(err, FLINT_INVALID, "%s: not a shared object: %s", path, why);
        free(p);
        return FLINT_INVALID;
    }
    free(p);
    dlerror();
    void *sym = dlsym(a->handle, "flint_job_main");
    if (!sym) {
        dlclose(a->handle);
        a->handle = NULL;
        return flint_err_set(err, FLINT_NOT_FOUND, "%s: no function flint_job_main", path);
    }
    /* POSIX makes dlsym's object pointer convertible to a function pointer. */
    memcpy(&a->main, &sym, sizeof a->main);
    return FLINT_OK;
}

void cli_artifact_close(cli_artifact *a) {
    if (a->handle) dlclose(a->handle);
    a->handle = NULL;
    a->main = NULL;
}

typedef struct udf_check {
    const cli_artifact *a;
    flint_err *err;
} udf_check;

static int check_one(const graph_udf *u, void *ud) {
    udf_check *c = ud;
    dlerror();
    void *sym = dlsym(c->a->handle, u->symbol);
    const char *what = strcmp(u->role, "fn") == 0             ? "user function"
                       : strcmp(u->role, "key.selector") == 0 ? "key selector"
                       : strcmp(u->role, "fn.open") == 0      ? "open function"
                                                              : "close function";
    if (!sym)
        return flint_err_set(c->err, FLINT_NOT_FOUND,
                             "%s: %s '%s' is not an exported symbol of %s (static?)",
                             u->operator_name, what, u->symbol, c->a->path);
    void (*fp)(void);
    memcpy(&fp, &sym, sizeof fp);
    if (fp != u->ptr)
        return flint_err_set(c->err, FLINT_INVALID,
                             "%s: %s '%s' of %s is not the function given to FLINT_FN (a static "
                             "function with the name of an exported one?)",
                             u->operator_name, what, u->symbol, c->a->path);
    return 0;
}

int cli_artifact_check_udfs(const cli_artifact *a, const flint_env *env, flint_err *err) {
    udf_check c = {a, err};
    return graph_env_foreach_udf(env, check_one, &c);
}

int cli_artifact_read(const cli_artifact *a, uint8_t **data, size_t *len, char hex[SHA256_HEX_LEN],
                      flint_err *err) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(a->path, "rb");
    if (!f) return flint_err_set(err, FLINT_IO, "%s: %s", a->path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = xmalloc(cap);
    for (;;) {
        if (n == cap) buf = xrealloc(buf, cap *= 2);
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return flint_err_set(err, FLINT_IO, "%s: read error", a->path);
    }
    sha256_hex(buf, n, hex);
    *data = buf;
    *len = n;
    return FLINT_OK;
}
