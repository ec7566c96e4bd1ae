/* Built-in sources, run by their task thread in small batches (so the task checks its mailbox
 * between them): source.elements, source.sequence, source.datagen, source.text_file and
 * source.socket. Each produces rows of the operator's output schema with one reused builder.
 * Checkpoints (issue 6): every source but the socket records its position (SourceSplitStates:
 * the file offset of the next line, the sequence's ranges and next values, the datagen and
 * elements sources' stride splits (src_split.h) and their next rows) and restores it; see the
 * end of the file. */
#include <errno.h>
#include <fcntl.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checkpoint/cp_task.h"
#include "operators/operator.h"
#include "operators/src_split.h"
#include "util/alloc.h"
#include "util/strutil.h"
#include "util/timeutil.h"

#define BATCH 256   /* rows per produce() call: the mailbox is checked between batches */

typedef struct source_state {
    flint_row_builder b;
    bool has_b;
    /* elements: every parsed row, back to back */
    uint8_t *rows;
    uint32_t *offs, *lens;
    int64_t nrows;
    /* datagen, elements: the stride splits this subtask owns (positions: sequence numbers,
     * element numbers) */
    src_splits splits;
    int64_t count;                      /* datagen: the bound (exclusive), -1 when unbounded */
    double rate_total;                  /* datagen: rows/s over all subtasks, 0: unlimited */
    /* sequence / datagen */
    int64_t cur, end, step;             /* next value, end (exclusive), stride */
    int64_t seq_lo, seq_hi;             /* sequence: the range being produced (inclusive) */
    int64_t (*more)[3];                 /* sequence: further restored ranges (lo, hi, next) */
    int n_more;
    struct datagen_field *fields;       /* datagen: what each output field holds */
    int nfields;
    size_t slots_off, fixed;            /* datagen: where the slots start, the fixed part's size */
    double rate;                        /* rows/s of this subtask, 0: unlimited */
    int64_t emitted, start_ms;
    /* text file, socket */
    FILE *f;
    char *line;
    size_t line_cap;
    int fd;
    char *buf;                          /* socket: received bytes buf[0..fill), lines from pos */
    size_t cap, fill, pos;
    bool eof;
} source_state;

static source_state *state_new(tm_op *op) {
    source_state *s = XNEW(source_state);
    s->fd = -1;
    op->state = s;
    if (op->out_schema) {
        flint_row_builder_init(&s->b, op->out_schema);
        s->has_b = true;
    }
    return s;
}

static void source_close(tm_op *op) {
    source_state *s = op->state;
    if (!s) return;
    if (s->has_b) flint_row_builder_free(&s->b);
    free(s->fields);
    free(s->rows);
    free(s->offs);
    free(s->lens);
    if (s->f) fclose(s->f);
    free(s->line);
    if (s->fd >= 0) close(s->fd);
    free(s->buf);
    free(s->more);
    src_splits_free(&s->splits);
    free(s);
    op->state = NULL;
}

static int need_schema(tm_op *op) {
    if (!op->out_schema) return tm_op_fail(op, "the source has no output schema");
    return FLINT_OK;
}

static int emit_built(tm_op *op, source_state *s) {
    flint_row row = flint_row_builder_row(&s->b);
    return tm_op_emit(op, &row);
}

/* Rate limit (rows per second over s->rate): how many rows may go now; 0 with *wake set when
 * none (src_rate_budget). */
static int64_t rate_budget(source_state *s, int64_t budget, int64_t *wake) {
    return s->rate > 0 ? src_rate_budget(s->rate, &s->start_ms, s->emitted, budget, wake) : budget;
}

/* ---- source.elements: the given rows, split round robin among subtasks ------------------------
 * Every subtask parses every row (a restored subtask may own any split); subtask i of p emits
 * the rows of its stride split i/p, element numbers i, i+p, i+2p, ... */

static int elements_open(tm_op *op) {
    source_state *s = state_new(op);
    int rc = need_schema(op);
    if (rc) return rc;
    src_splits_init(&s->splits, "elements", 1, op->rt->subtask, op->rt->parallelism);
    const char *text = tm_op_param(op, "rows");
    if (!text || !text[0]) return FLINT_OK;
    int64_t n = 1;
    for (const char *p = text; *p; p++) n += *p == '\n';
    s->offs = xcalloc((size_t)n, sizeof *s->offs);
    s->lens = xcalloc((size_t)n, sizeof *s->lens);
    size_t cap = 0, used = 0;
    const char *p = text;
    for (int64_t k = 0; k < n; k++) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        flint_err err = {0};
        flint_row_builder_reset(&s->b);
        if (flint_row_parse(&s->b, p, len, ',', &err))
            return tm_op_fail(op, "element %lld ('%.*s'): %s", (long long)k + 1, (int)(len > 80 ? 80 : len), p, err.msg);
        if (used + s->b.len > cap) {
            cap = (used + s->b.len) * 2;
            s->rows = xrealloc(s->rows, cap);
        }
        memcpy(s->rows + used, s->b.buf, s->b.len);
        s->offs[s->nrows] = (uint32_t)used;
        s->lens[s->nrows] = (uint32_t)s->b.len;
        s->nrows++;
        used += s->b.len;
        p = nl ? nl + 1 : p + len;
    }
    return FLINT_OK;
}

static int elements_produce(tm_op *op, int64_t deadline, tm_source_status *st, int64_t *wake) {
    source_state *s = op->state;
    int nf = flint_schema_field_count(op->out_schema);
    src_split *sp = src_splits_pick(&s->splits, s->nrows);
    for (int i = 0; i < BATCH && sp; i++) {
        int64_t k = sp->next;
        flint_row row = flint_row_view(op->out_schema, s->rows + s->offs[k], s->lens[k], nf);
        int rc = tm_op_emit(op, &row);
        if (rc) return rc;
        sp->next = k + sp->m;
        sp = src_splits_pick(&s->splits, s->nrows);
    }
    *st = sp ? TM_SOURCE_MORE : TM_SOURCE_END;
    return FLINT_OK;
}

/* ---- source.sequence: from..to inclusive, a contiguous range per subtask ---------------------- */

static int sequence_open(tm_op *op) {
    source_state *s = state_new(op);
    int rc = need_schema(op);
    if (rc) return rc;
    int64_t from, to;
    if ((rc = tm_op_param_int(op, "from", 0, &from)) || (rc = tm_op_param_int(op, "to", -1, &to))) return rc;
    if (flint_schema_field_count(op->out_schema) < 1 || flint_schema_field_type(op->out_schema, 0) != FLINT_BIGINT)
        return tm_op_fail(op, "the sequence's schema must start with a BIGINT field, not '%s'",
                          flint_schema_text(op->out_schema));
    s->step = 1;
    if (to < from) return FLINT_OK;
    /* n may exceed INT64_MAX for the widest ranges: work in unsigned (the full int64 range, whose
     * size does not fit in 64 bits, is cut one short). */
    uint64_t n = (uint64_t)to - (uint64_t)from + 1;
    if (n == 0) n = UINT64_MAX;
    unsigned __int128 p = (unsigned)op->rt->parallelism, i = (unsigned)op->rt->subtask;
    uint64_t lo = (uint64_t)(n * i / p), hi = (uint64_t)(n * (i + 1) / p);
    s->cur = (int64_t)((uint64_t)from + lo);
    s->nrows = (int64_t)(hi - lo); /* rows left, counted down to 0 (as unsigned for huge ranges) */
    s->seq_lo = s->cur;
    s->seq_hi = (int64_t)((uint64_t)s->cur + (hi - lo) - 1);
    return FLINT_OK;
}

static int sequence_produce(tm_op *op, int64_t deadline, tm_source_status *st, int64_t *wake) {
    source_state *s = op->state;
    while (s->nrows == 0 && s->n_more > 0) {   /* the next restored range */
        int64_t *r = s->more[--s->n_more];
        s->seq_lo = r[0];
        s->seq_hi = r[1];
        s->cur = r[2];
        s->nrows = r[2] > r[1] ? 0 : (int64_t)((uint64_t)r[1] - (uint64_t)r[2] + 1);
    }
    for (int i = 0; i < BATCH && s->nrows != 0; i++) {
        flint_row_builder_reset(&s->b);
        flint_row_set_long(&s->b, 0, s->cur);
        int rc = emit_built(op, s);
        if (rc) return rc;
        s->cur = (int64_t)((uint64_t)s->cur + 1);
        s->nrows--;
    }
    *st = s->nrows != 0 || s->n_more > 0 ? TM_SOURCE_MORE : TM_SOURCE_END;
    return FLINT_OK;
}

/* ---- source.datagen ------------------------------------------------------------------------------
 * Subtask i of p generates the global sequence numbers i, i+p, i+2p, ... (below count when
 * bounded), at rate/p rows per second when rate-limited. The first BIGINT field is the sequence
 * number; every other field is a pseudo-random function of (seed, sequence number, field), so a
 * run repeats whatever the parallelism: field f of row n is mix64(stream_f + n * golden), a
 * SplitMix64 stream per field (stream_f from the seed and f). STRING and BYTES values are
 * DATAGEN_STRING_LEN characters of [a-z0-9]. Rows are written in place in the layout of
 * flint/row.h (no NULLs: the null bitmap is cleared once at open), one store per slot. */

#define DATAGEN_STRING_LEN 10
#define GOLDEN UINT64_C(0x9e3779b97f4a7c15)

typedef enum datagen_kind { DG_SEQ, DG_INT, DG_LONG, DG_DOUBLE, DG_BOOL, DG_TIME, DG_CHARS } datagen_kind;

typedef struct datagen_field {
    datagen_kind kind;
    uint64_t stream;
} datagen_field;

static uint64_t mix64(uint64_t z) { /* splitmix64's finalizer */
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static datagen_kind datagen_kind_of(flint_type t, bool first_bigint) {
    switch (t) {
    case FLINT_INT: return DG_INT;
    case FLINT_BIGINT: return first_bigint ? DG_SEQ : DG_LONG;
    case FLINT_DOUBLE: return DG_DOUBLE;
    case FLINT_BOOLEAN: return DG_BOOL;
    case FLINT_TIMESTAMP: return DG_TIME;
    case FLINT_STRING:
    case FLINT_BYTES: return DG_CHARS;
    }
    return DG_CHARS;
}

static int datagen_open(tm_op *op) {
    source_state *s = state_new(op);
    int rc = need_schema(op);
    if (rc) return rc;
    int64_t count, seed;
    if ((rc = tm_op_param_int(op, "count", -1, &count)) || (rc = tm_op_param_int(op, "seed", 0, &seed))) return rc;
    const char *r = tm_op_param(op, "rate");
    double rate = 0;
    if (r && r[0] && (str_parse_double(r, &rate) || !(rate >= 0) || isinf(rate)))
        return tm_op_fail(op, "parameter 'rate': expected rows per second, got '%s'", r);
    int n = s->nfields = flint_schema_field_count(op->out_schema);
    s->fields = xcalloc((size_t)n, sizeof *s->fields);
    bool have_seq = false;
    size_t var_bytes = 0;
    for (int i = 0; i < n; i++) {
        flint_type t = flint_schema_field_type(op->out_schema, i);
        datagen_field *f = &s->fields[i];
        f->kind = datagen_kind_of(t, t == FLINT_BIGINT && !have_seq);
        f->stream = mix64((uint64_t)seed * GOLDEN ^ (uint64_t)i << 56);
        have_seq |= f->kind == DG_SEQ;
        if (f->kind == DG_CHARS) var_bytes += DATAGEN_STRING_LEN;
    }
    s->fixed = flint_row_fixed_size(n);
    s->slots_off = s->fixed - (size_t)n * 8;
    flint_row_builder_reserve(&s->b, var_bytes + 16); /* alnum16 writes 16 bytes */
    memset(s->b.buf, 0, s->slots_off);
    src_splits_init(&s->splits, "datagen", 1, op->rt->subtask, op->rt->parallelism);
    s->count = count < 0 ? -1 : count;
    s->rate_total = rate;
    s->rate = rate > 0 ? rate / op->rt->parallelism : 0;
    s->start_ms = time_mono_ms();
    return FLINT_OK;
}

/* 16 characters of [a-z0-9] from the 16 bytes of two 64-bit draws, written to out[0..16): byte v
 * becomes character v * 36 >> 8 of "a..z0..9" (26 letters, then digits). 256 = 7 * 36 + 4, so
 * four of the 36 characters come up 8 times in 256 and the others 7: close to uniform, no
 * division. All bytes at once (SSE2, or 8 per 64-bit word), the same characters either way. */
static inline void alnum16(uint64_t r0, uint64_t r1, uint8_t *out) {
#ifdef __SSE2__
    const __m128i lanes = _mm_set1_epi16(0x00ff), k36 = _mm_set1_epi16(36);
    __m128i v = _mm_set_epi64x((long long)r1, (long long)r0);
    /* Even bytes, then odd bytes, times 36 in 16-bit lanes (at most 255 * 36 < 2^16); the high
     * byte of each product is the character's index x. */
    __m128i even = _mm_srli_epi16(_mm_mullo_epi16(_mm_and_si128(v, lanes), k36), 8);
    __m128i odd = _mm_andnot_si128(lanes, _mm_mullo_epi16(_mm_srli_epi16(v, 8), k36));
    __m128i x = _mm_or_si128(even, odd);
    __m128i digit = _mm_cmpgt_epi8(x, _mm_set1_epi8(25));
    __m128i c = _mm_add_epi8(_mm_add_epi8(x, _mm_set1_epi8('a')), _mm_and_si128(digit, _mm_set1_epi8('0' - 26 - 'a')));
    _mm_storeu_si128((__m128i *)(void *)out, c);
#else
    const uint64_t lanes = UINT64_C(0x00ff00ff00ff00ff);
    uint64_t r[2] = {r0, r1};
    for (int k = 0; k < 2; k++) {
        uint64_t x = ((r[k] & lanes) * 36 >> 8 & lanes) | (((r[k] >> 8) & lanes) * 36 & ~lanes);
        uint64_t digit = ((x + UINT64_C(0x6666666666666666)) & UINT64_C(0x8080808080808080)) >> 7; /* x >= 26 */
        uint64_t c = x + UINT64_C(0x6161616161616161) - digit * ('a' + 26 - '0');
        memcpy(out + 8 * k, &c, 8); /* little-endian: byte k of r is character k */
    }
#endif
}

/* Row seq, in place in s->b (room reserved at open). */
static void datagen_fill(source_state *s, int64_t seq) {
    uint8_t *row = s->b.buf, *slot = row + s->slots_off;
    size_t len = s->fixed;
    uint64_t at = (uint64_t)seq * GOLDEN;
    for (int i = 0; i < s->nfields; i++, slot += 8) {
        const datagen_field *f = &s->fields[i];
        uint64_t v;
        switch (f->kind) {
        case DG_SEQ: v = (uint64_t)seq; break;
        case DG_INT: v = (uint64_t)(int64_t)(int32_t)mix64(f->stream + at); break;
        case DG_LONG: v = mix64(f->stream + at); break;
        case DG_DOUBLE: {
            double d = (double)(mix64(f->stream + at) >> 11) / 9007199254740992.0;
            memcpy(&v, &d, 8);
            break;
        }
        case DG_BOOL: v = mix64(f->stream + at) & 1; break;
        case DG_TIME: v = (uint64_t)(INT64_C(1700000000000) + seq); break;
        case DG_CHARS: {
            /* 16 characters written (room reserved), the first DATAGEN_STRING_LEN kept. */
            _Static_assert(DATAGEN_STRING_LEN <= 16, "two draws");
            uint64_t r = mix64(f->stream + at);
            alnum16(r, mix64(r), row + len);
            v = (uint64_t)len << 32 | DATAGEN_STRING_LEN;
            len += DATAGEN_STRING_LEN;
            break;
        }
        default: abort();
        }
        memcpy(slot, &v, 8);
    }
    s->b.len = len;
}

/* The rows of this call, counted first (the budget, the bound, the end of the int64 range), so
 * that the loop runs with no check per row but the emission's status. */
static int datagen_produce(tm_op *op, int64_t deadline, tm_source_status *st, int64_t *wake) {
    source_state *s = op->state;
    int64_t n = rate_budget(s, BATCH, wake);
    if (n == 0) {
        *st = TM_SOURCE_WAIT;
        return FLINT_OK;
    }
    int64_t cur = s->cur, step = s->step;
    if (s->end >= 0) {
        uint64_t span = cur >= s->end ? 0 : (uint64_t)s->end - (uint64_t)cur; /* rows left: ceil(span / step) */
        int64_t left = (int64_t)((span + (uint64_t)step - 1) / (uint64_t)step);
        if (left < n) n = left;
    }
    uint64_t fit = (uint64_t)(INT64_MAX - cur) / (uint64_t)step + 1; /* rows with cur + k * step <= INT64_MAX */
    bool exhausts = fit <= (uint64_t)n;
    if (exhausts) n = (int64_t)fit;
    for (int64_t k = 0; k < n; k++) {
        datagen_fill(s, cur + k * step);
        int rc = emit_built(op, s);
        if (rc) {
            s->cur = cur + k * step;
            s->emitted += k;
            return rc;
        }
    }
    s->emitted += n;
    if (exhausts) s->end = 0; /* the sequence is exhausted */
    else s->cur = cur + n * step;
    *st = s->end >= 0 && s->cur >= s->end ? TM_SOURCE_END : TM_SOURCE_MORE;
    return FLINT_OK;
}

/* ---- source.text_file: the lines of a file (bounded; read by subtask 0) ------------------------- */

static int text_file_open(tm_op *op) {
    source_state *s = state_new(op);
    int rc = need_schema(op);
    if (rc) return rc;
    const char *path;
    if ((rc = tm_op_param_req(op, "path", &path))) return rc;
    const char *r = tm_op_param(op, "rate");
    if (r && r[0] && (str_parse_double(r, &s->rate) || !(s->rate >= 0) || isinf(s->rate)))
        return tm_op_fail(op, "parameter 'rate': expected lines per second, got '%s'", r);
    s->start_ms = time_mono_ms();
    if (op->rt->subtask != 0) return FLINT_OK;
    s->f = fopen(path, "r");
    if (!s->f) return tm_op_fail(op, "cannot open '%s': %s", path, strerror(errno));
    return FLINT_OK;
}

/* The line in p[0..len) without its '\r' as field 0. */
static int emit_line(tm_op *op, source_state *s, const char *p, size_t len) {
    if (len && p[len - 1] == '\r') len--;
    flint_row_builder_reset(&s->b);
    flint_row_set_string(&s->b, 0, p, len);
    return emit_built(op, s);
}

static int text_file_produce(tm_op *op, int64_t deadline, tm_source_status *st, int64_t *wake) {
    source_state *s = op->state;
    *st = TM_SOURCE_END;
    if (!s->f) return FLINT_OK;
    int64_t budget = rate_budget(s, BATCH, wake);
    if (budget == 0) {
        *st = TM_SOURCE_WAIT;
        return FLINT_OK;
    }
    for (int i = 0; i < budget; i++) {
        errno = 0;
        ssize_t n = getline(&s->line, &s->line_cap, s->f);
        if (n < 0) {
            if (ferror(s->f)) return tm_op_fail(op, "reading '%s': %s", tm_op_param(op, "path"), strerror(errno));
            return FLINT_OK;
        }
        if (n > 0 && s->line[n - 1] == '\n') n--;
        int rc = emit_line(op, s, s->line, (size_t)n);
        if (rc) return rc;
        s->emitted++;
    }
    *st = TM_SOURCE_MORE;
    return FLINT_OK;
}

/* ---- source.socket: lines from a TCP server until it closes (Flink's socketTextStream) -------- */

#define CONNECT_TIMEOUT_MS 10000

static int socket_connect(tm_op *op, const char *host, const char *port) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g) return tm_op_fail(op, "cannot resolve '%s': %s", host, gai_strerror(g));
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int r = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
            socklen_t sl = sizeof err;
            if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == 0 && err == 0) break;
            if (r == 0) err = ETIMEDOUT;
        } else {
            err = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return tm_op_fail(op, "cannot connect to %s:%s: %s", host, port, strerror(err));
    ((source_state *)op->state)->fd = fd;
    return FLINT_OK;
}

static int socket_open(tm_op *op) {
    source_state *s = state_new(op);
    int rc = need_schema(op);
    if (rc) return rc;
    const char *host, *port;
    if ((rc = tm_op_param_req(op, "host", &host)) || (rc = tm_op_param_req(op, "port", &port))) return rc;
    if (op->rt->subtask != 0) return FLINT_OK;
    s->cap = 65536;
    s->buf = xmalloc(s->cap);
    return socket_connect(op, host, port);
}

static int socket_produce(tm_op *op, int64_t deadline, tm_source_status *st, int64_t *wake) {
    source_state *s = op->state;
    *st = TM_SOURCE_MORE;
    if (s->fd < 0 && !s->eof) {
        *st = TM_SOURCE_END;
        return FLINT_OK;
    }
    int emitted = 0;
    for (;;) {
        /* Complete lines first. */
        while (emitted < BATCH) {
            char *nl = memchr(s->buf + s->pos, '\n', s->fill - s->pos);
            if (!nl) break;
            int rc = emit_line(op, s, s->buf + s->pos, (size_t)(nl - (s->buf + s->pos)));
            if (rc) return rc;
            s->pos = (size_t)(nl - s->buf) + 1;
            emitted++;
        }
        if (emitted >= BATCH) return FLINT_OK;
        if (s->eof) {
            /* The server closed the connection: the last unterminated line, then the end. */
            if (s->pos < s->fill) {
                int rc = emit_line(op, s, s->buf + s->pos, s->fill - s->pos);
                if (rc) return rc;
            }
            s->pos = s->fill = 0;
            *st = TM_SOURCE_END;
            return FLINT_OK;
        }
        if (emitted > 0) return FLINT_OK; /* let the task flush and check its mailbox */
        /* Compact, grow for a line longer than the buffer, then read. */
        if (s->pos > 0) {
            memmove(s->buf, s->buf + s->pos, s->fill - s->pos);
            s->fill -= s->pos;
            s->pos = 0;
        }
        if (s->fill == s->cap) {
            s->cap *= 2;
            s->buf = xrealloc(s->buf, s->cap);
        }
        ssize_t n = read(s->fd, s->buf + s->fill, s->cap - s->fill);
        if (n > 0) {
            s->fill += (size_t)n;
            continue;
        }
        if (n == 0) {
            s->eof = true;
            close(s->fd);
            s->fd = -1;
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return tm_op_fail(op, "reading from %s:%s: %s", tm_op_param(op, "host"), tm_op_param(op, "port"),
                              strerror(errno));
        /* Nothing yet: wait for data until the task's deadline (counted as idle time). */
        int64_t now = time_mono_ms();
        int timeout = deadline <= now ? 0 : deadline - now > 1000 ? 1000 : (int)(deadline - now);
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        int64_t t0 = time_mono_ns();
        int r = poll(&pfd, 1, timeout);
        op->rt->idle_ns += time_mono_ns() - t0;
        if (r == 0) return FLINT_OK; /* MORE: the task runs its mailbox and comes back */
        if (r < 0 && errno != EINTR) return tm_op_fail(op, "poll: %s", strerror(errno));
    }
}

/* ---- checkpoints: source positions ------------------------------------------------------------
 * text_file: "file:<path>", the byte offset of the next line (read by subtask 0; a restored split
 * opens the file wherever it lands). sequence: "seq:<lo>..<hi>" (each range the subtask has),
 * the next value. datagen, elements and nexmark (nexmark.c): their stride splits
 * "<kind>:<r>/<m>" (src_split.h), the next sequence number or element. A subtask restores every
 * range or split it is given (none: it has nothing left to produce), so these sources rescale.
 * The socket source records nothing: it is not replayable. */

static int text_file_snapshot(tm_op *op, int64_t id, Flint__Checkpoint__OperatorSubtaskState *out) {
    source_state *s = op->state;
    if (!s->f) return FLINT_OK;
    char *split = xasprintf("file:%s", tm_op_param(op, "path"));
    off_t pos = ftello(s->f);
    tm_cp_add_split(out, split, (int64_t)pos, NULL, 0);
    free(split);
    return pos < 0 ? tm_op_fail(op, "cannot tell the position in '%s': %s", tm_op_param(op, "path"), strerror(errno))
                   : FLINT_OK;
}

static int text_file_restore(tm_op *op, const Flint__Checkpoint__OperatorRestore *r) {
    source_state *s = op->state;
    const char *path = tm_op_param(op, "path");
    for (size_t i = 0; i < r->n_source_splits; i++) {
        const Flint__Checkpoint__SourceSplitState *sp = r->source_splits[i];
        if (strncmp(sp->split_id, "file:", 5) != 0 || strcmp(sp->split_id + 5, path) != 0)
            return tm_op_fail(op, "cannot restore split '%s': this source reads '%s'", sp->split_id, path);
        if (!s->f && !(s->f = fopen(path, "r"))) return tm_op_fail(op, "cannot open '%s': %s", path, strerror(errno));
        if (fseeko(s->f, (off_t)sp->position, SEEK_SET) != 0)
            return tm_op_fail(op, "cannot seek to %lld in '%s': %s", (long long)sp->position, path, strerror(errno));
    }
    return FLINT_OK;
}

static int sequence_snapshot(tm_op *op, int64_t id, Flint__Checkpoint__OperatorSubtaskState *out) {
    source_state *s = op->state;
    char split[80];
    if (s->seq_hi >= s->seq_lo || s->nrows) {
        snprintf(split, sizeof split, "seq:%lld..%lld", (long long)s->seq_lo, (long long)s->seq_hi);
        tm_cp_add_split(out, split, s->nrows ? s->cur : (int64_t)((uint64_t)s->seq_hi + 1), NULL, 0);
    }
    for (int i = 0; i < s->n_more; i++) {
        snprintf(split, sizeof split, "seq:%lld..%lld", (long long)s->more[i][0], (long long)s->more[i][1]);
        tm_cp_add_split(out, split, s->more[i][2], NULL, 0);
    }
    return FLINT_OK;
}

static int sequence_restore(tm_op *op, const Flint__Checkpoint__OperatorRestore *r) {
    source_state *s = op->state;
    s->nrows = 0;
    s->seq_lo = 0, s->seq_hi = -1;
    free(s->more);
    s->more = xcalloc(r->n_source_splits + 1, sizeof *s->more);
    s->n_more = 0;
    for (size_t i = r->n_source_splits; i-- > 0;) {   /* taken from the end: restored in order */
        long long lo, hi;
        if (sscanf(r->source_splits[i]->split_id, "seq:%lld..%lld", &lo, &hi) != 2)
            return tm_op_fail(op, "cannot restore split '%s': not a sequence range", r->source_splits[i]->split_id);
        int64_t *m = s->more[s->n_more++];
        m[0] = lo, m[1] = hi, m[2] = r->source_splits[i]->position;
    }
    return FLINT_OK;
}

/* datagen: produce from the split of the lowest next sequence number, the rows of which
 * datagen_produce makes as the stride cur, cur + step, ... below end; then the split goes on
 * where that stopped (at the end of the int64 range, where datagen_produce sets end to 0, it is
 * done). */
static int datagen_produce_splits(tm_op *op, int64_t deadline, tm_source_status *st, int64_t *wake) {
    source_state *s = op->state;
    src_split *sp = src_splits_pick(&s->splits, s->count);
    if (!sp) {
        *st = TM_SOURCE_END;
        return FLINT_OK;
    }
    s->cur = sp->next, s->step = sp->m, s->end = s->count;
    int rc = datagen_produce(op, deadline, st, wake);
    sp->next = s->end == 0 && s->count != 0 ? SRC_SPLIT_DONE : s->cur;
    if (!rc && *st == TM_SOURCE_END && src_splits_pick(&s->splits, s->count)) *st = TM_SOURCE_MORE;
    return rc;
}

/* datagen, elements: the stride splits; a restored datagen subtask's rate is its splits' share. */
static int stride_snapshot(tm_op *op, int64_t id, Flint__Checkpoint__OperatorSubtaskState *out) {
    source_state *s = op->state;
    return src_splits_snapshot(&s->splits, out);
}

static int stride_restore(tm_op *op, const Flint__Checkpoint__OperatorRestore *r) {
    source_state *s = op->state;
    int rc = src_splits_restore(&s->splits, op, r);
    s->rate = s->rate_total * src_splits_share(&s->splits);
    return rc;
}

const tm_op_kind tm_op_SOURCE_ELEMENTS = {.name = "source.elements", .open = elements_open, .produce = elements_produce, .close = source_close,
                                          .snapshot_state = stride_snapshot, .initialize_state = stride_restore};
const tm_op_kind tm_op_SOURCE_SEQUENCE = {.name = "source.sequence", .open = sequence_open, .produce = sequence_produce, .close = source_close,
                                          .snapshot_state = sequence_snapshot, .initialize_state = sequence_restore};
const tm_op_kind tm_op_SOURCE_DATAGEN = {.name = "source.datagen", .open = datagen_open, .produce = datagen_produce_splits, .close = source_close,
                                         .snapshot_state = stride_snapshot, .initialize_state = stride_restore};
const tm_op_kind tm_op_SOURCE_TEXT_FILE = {.name = "source.text_file", .open = text_file_open, .produce = text_file_produce, .close = source_close,
                                           .snapshot_state = text_file_snapshot, .initialize_state = text_file_restore};
const tm_op_kind tm_op_SOURCE_SOCKET = {.name = "source.socket", .open = socket_open, .produce = socket_produce, .close = source_close};
