/* Stride splits of the generator sources: bookkeeping, snapshot and restore; their pacing (see
 * src_split.h). */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/cp_task.h"
#include "operators/src_split.h"
#include "util/alloc.h"
#include "util/timeutil.h"

void src_splits_init(src_splits *s, const char *kind, int64_t unit, int subtask, int parallelism) {
    assert(unit > 0 && parallelism > 0 && subtask >= 0 && subtask < parallelism);
    s->kind = kind;
    s->unit = unit;
    s->v = xmalloc(sizeof *s->v);
    s->v[0] = (src_split){.r = subtask, .m = parallelism, .next = subtask * unit};
    s->n = 1;
}

void src_splits_free(src_splits *s) {
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

double src_splits_share(const src_splits *s) {
    double share = 0;
    for (int i = 0; i < s->n; i++) share += 1.0 / (double)s->v[i].m;
    return share;
}

src_split *src_splits_pick(src_splits *s, int64_t end) {
    src_split *best = NULL;
    for (int i = 0; i < s->n; i++) {
        src_split *sp = &s->v[i];
        if (sp->next == SRC_SPLIT_DONE || (end >= 0 && sp->next >= end)) continue;
        if (!best || sp->next < best->next) best = sp;
    }
    return best;
}

int64_t src_rate_budget(double rate, int64_t *start_ms, int64_t emitted, int64_t budget, int64_t *wake_ms) {
    assert(rate > 0 && budget > 0);
    int64_t now = time_mono_ms();
    int64_t due = (int64_t)((double)(now - *start_ms) * rate / 1000.0) + 1;
    if (due - emitted > (int64_t)rate + 1) {
        *start_ms = now - (int64_t)((double)emitted * 1000.0 / rate);
        due = emitted + 1;
    }
    if (due <= emitted) {
        *wake_ms = *start_ms + (int64_t)ceil((double)emitted * 1000.0 / rate);
        if (*wake_ms <= now) *wake_ms = now + 1;
        return 0;
    }
    return due - emitted < budget ? due - emitted : budget;
}

int src_splits_snapshot(const src_splits *s, Flint__Checkpoint__OperatorSubtaskState *out) {
    for (int i = 0; i < s->n; i++) {
        char id[96];
        snprintf(id, sizeof id, "%s:%" PRId64 "/%" PRId64, s->kind, s->v[i].r, s->v[i].m);
        tm_cp_add_split(out, id, s->v[i].next, NULL, 0);
    }
    return FLINT_OK;
}

int src_splits_restore(src_splits *s, tm_op *op, const Flint__Checkpoint__OperatorRestore *r) {
    size_t klen = strlen(s->kind);
    src_split *v = xcalloc(r->n_source_splits + 1, sizeof *v);
    for (size_t i = 0; i < r->n_source_splits; i++) {
        const char *id = r->source_splits[i]->split_id;
        long long rr, m;
        int used = -1;
        if (strncmp(id, s->kind, klen) != 0 || id[klen] != ':' ||
            sscanf(id + klen + 1, "%lld/%lld%n", &rr, &m, &used) != 2 || id[klen + 1 + used] || !(0 <= rr && rr < m && m <= INT32_MAX)) {
            free(v);
            return tm_op_fail(op, "cannot restore split '%s': not one of this %s source's splits ('%s:<r>/<m>', "
                              "0 <= r < m < 2^31)", id, s->kind, s->kind);
        }
        int64_t next = r->source_splits[i]->position;
        if (next >= 0 && next != SRC_SPLIT_DONE && next / s->unit % m != rr) {
            free(v);
            return tm_op_fail(op, "cannot restore split '%s': position %lld is not in one of its units", id,
                              (long long)next);
        }
        v[i] = (src_split){.r = rr, .m = m, .next = next < 0 ? SRC_SPLIT_DONE : next};
    }
    free(s->v);
    s->v = v;
    s->n = (int)r->n_source_splits;
    return FLINT_OK;
}
