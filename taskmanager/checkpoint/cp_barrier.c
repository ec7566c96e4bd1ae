/* Checkpoint barriers: the event payload and the barrier handler (cp_barrier.h). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/cp_barrier.h"
#include "util/alloc.h"

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

size_t tm_barrier_encode(const tm_barrier *b, uint8_t out[TM_BARRIER_MAX]) {
    put64(out, (uint64_t)b->checkpoint_id);
    put64(out + 8, (uint64_t)b->timestamp);
    out[16] = (uint8_t)b->type;
    out[17] = (uint8_t)b->mode;
    size_t pos = 18;
    const char *strs[2] = {b->target, b->shared};
    for (int i = 0; i < 2; i++) {
        size_t n = strnlen(strs[i], 1023);
        out[pos] = (uint8_t)n;
        out[pos + 1] = (uint8_t)(n >> 8);
        memcpy(out + pos + 2, strs[i], n);
        pos += 2 + n;
    }
    return pos;
}

bool tm_barrier_decode(const uint8_t *payload, size_t len, tm_barrier *out) {
    if (len < 22) return false;
    out->checkpoint_id = (int64_t)get64(payload);
    out->timestamp = (int64_t)get64(payload + 8);
    out->type = payload[16];
    out->mode = payload[17];
    size_t pos = 18;
    char *strs[2] = {out->target, out->shared};
    for (int i = 0; i < 2; i++) {
        if (len - pos < 2) return false;
        size_t n = (size_t)(payload[pos] | payload[pos + 1] << 8);
        if (n > 1023 || len - pos - 2 < n) return false;
        memcpy(strs[i], payload + pos + 2, n);
        strs[i][n] = '\0';
        pos += 2 + n;
    }
    return pos == len && out->checkpoint_id > 0 && out->type <= 3 && out->mode <= 1;
}

void tm_aligner_init(tm_aligner *a, int n_channels, bool exactly_once) {
    assert(n_channels >= 0);
    memset(a, 0, sizeof *a);
    a->n = n_channels;
    a->exactly_once = exactly_once;
    size_t n = n_channels > 0 ? (size_t)n_channels : 1;
    a->got = xcalloc(n, sizeof *a->got);
    a->drained = xcalloc(n, sizeof *a->drained);
    a->ended = xcalloc(n, sizeof *a->ended);
}

void tm_aligner_free(tm_aligner *a) {
    free(a->got);
    free(a->drained);
    free(a->ended);
    a->got = a->drained = a->ended = NULL;
}

static void reset(tm_aligner *a) {
    a->pending = 0;
    a->n_got = 0;
    memset(a->got, 0, (size_t)(a->n > 0 ? a->n : 1) * sizeof *a->got);
}

/* Channel ch delivered the pending checkpoint's barrier (or ended after its end of data). */
static void delivered(tm_aligner *a, int ch, int64_t now_ns, tm_align_result *r) {
    a->got[ch] = true;
    a->n_got++;
    if (a->n_got == a->n) {
        r->trigger = true;
        r->alignment_ns = now_ns - a->start_ns;
        if (a->exactly_once && a->n > 1) r->unblock_all = true;
        reset(a);
    } else if (a->exactly_once) {
        r->block = true;
    }
}

/* Start aligning b, newer than every checkpoint seen: whatever was being aligned is subsumed by
 * it. False when it cannot align (r->ended: a channel ended without end of data). */
static bool start(tm_aligner *a, const tm_barrier *b, int64_t now_ns, tm_align_result *r) {
    assert(b->checkpoint_id > a->max_seen);
    if (a->pending) {
        r->aborted = a->pending;
        r->unblock_all = true;
        reset(a);
    }
    a->max_seen = b->checkpoint_id;
    if (a->n_dead) {   /* a channel that ended without end of data never delivers it */
        r->ended = b->checkpoint_id;
        return false;
    }
    a->pending = b->checkpoint_id;
    a->barrier = *b;
    a->start_ns = now_ns;
    /* channels that ended after their end of data have delivered every later barrier */
    memcpy(a->got, a->ended, (size_t)a->n * sizeof *a->got);
    a->n_got = a->n_ended;
    return true;
}

tm_align_result tm_aligner_on_barrier(tm_aligner *a, int ch, const tm_barrier *b, int64_t now_ns) {
    tm_align_result r = {0};
    assert(ch >= 0 && ch < a->n);
    int64_t id = b->checkpoint_id;
    if (id > a->max_seen) {
        if (!start(a, b, now_ns, &r)) return r;
    } else if (id != a->pending || a->got[ch]) {
        return r;   /* an older (aborted or completed) checkpoint, or a duplicate */
    }
    delivered(a, ch, now_ns, &r);
    return r;
}

tm_align_result tm_aligner_on_trigger(tm_aligner *a, const tm_barrier *b, int64_t now_ns) {
    tm_align_result r = {0};
    if (b->checkpoint_id <= a->max_seen) {
        r.aborted = b->checkpoint_id;
        return r;
    }
    if (!start(a, b, now_ns, &r) || a->n_got < a->n) return r;
    r.trigger = true;   /* every channel has ended already */
    r.unblock_all = a->exactly_once && a->n > 1;
    reset(a);
    return r;
}

void tm_aligner_on_end_of_data(tm_aligner *a, int ch) {
    assert(ch >= 0 && ch < a->n);
    a->drained[ch] = true;
}

tm_align_result tm_aligner_on_end(tm_aligner *a, int ch, int64_t now_ns) {
    tm_align_result r = {0};
    assert(ch >= 0 && ch < a->n);
    if (a->ended[ch]) return r;
    a->ended[ch] = true;
    a->n_ended++;
    if (!a->drained[ch]) a->n_dead++;
    if (!a->pending || a->got[ch]) return r;
    if (a->drained[ch]) {
        delivered(a, ch, now_ns, &r);
        r.block = false;   /* nothing to block: the channel has ended */
        return r;
    }
    r.ended = a->pending;
    r.unblock_all = a->exactly_once;
    reset(a);
    return r;
}

int64_t tm_aligner_abort(tm_aligner *a, int64_t id) {
    if (!a->pending || (id && id != a->pending)) {
        if (id > a->max_seen) a->max_seen = id;   /* never start aligning it later */
        return 0;
    }
    int64_t was = a->pending;
    reset(a);
    return was;
}
