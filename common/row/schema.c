/* Schemas: the parser for SQL-style column lists ("word STRING, n BIGINT, ts TIMESTAMP(3)"), the
 * canonical text form, and the accessors of flint/row.h. Schemas are parsed when a job's graph is
 * built and when a task is deployed, never per row. */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "row/row_internal.h"
#include "util/alloc.h"

#define TYPES_EXPECTED \
    "STRING, VARCHAR(n), INT, INTEGER, BIGINT, DOUBLE, BOOLEAN, TIMESTAMP(3) or BYTES"

static const char *const type_names[] = {
    [FLINT_STRING] = "STRING",   [FLINT_INT] = "INT",           [FLINT_BIGINT] = "BIGINT",
    [FLINT_DOUBLE] = "DOUBLE",   [FLINT_BOOLEAN] = "BOOLEAN",   [FLINT_TIMESTAMP] = "TIMESTAMP(3)",
    [FLINT_BYTES] = "BYTES",
};

const char *flint_type_name(flint_type t) {
    if ((unsigned)t >= sizeof type_names / sizeof type_names[0]) return "UNKNOWN";
    return type_names[t];
}

bool flint_type_is_numeric(flint_type t) {
    return t == FLINT_INT || t == FLINT_BIGINT || t == FLINT_DOUBLE;
}

/* ---- parsing ------------------------------------------------------------------------------- */

/* How a type word is spelled and what its optional "(n)" means. */
typedef enum type_arg { ARG_NONE, ARG_LENGTH, ARG_PRECISION } type_arg;

typedef struct type_word {
    const char *word;
    flint_type type;
    type_arg arg;       /* what a "(n)" after the word means; ARG_NONE: not allowed */
} type_word;

static const type_word type_words[] = {
    {"STRING", FLINT_STRING, ARG_NONE},       {"VARCHAR", FLINT_STRING, ARG_LENGTH},
    {"INT", FLINT_INT, ARG_NONE},             {"INTEGER", FLINT_INT, ARG_NONE},
    {"BIGINT", FLINT_BIGINT, ARG_NONE},       {"DOUBLE", FLINT_DOUBLE, ARG_NONE},
    {"BOOLEAN", FLINT_BOOLEAN, ARG_NONE},     {"BOOL", FLINT_BOOLEAN, ARG_NONE},
    {"TIMESTAMP", FLINT_TIMESTAMP, ARG_PRECISION},
    {"BYTES", FLINT_BYTES, ARG_NONE},         {"VARBINARY", FLINT_BYTES, ARG_LENGTH},
};

/* Flink SQL types Flint does not have, with what to use instead. */
static const struct { const char *word, *use; } unsupported_words[] = {
    {"TINYINT", "INT"},  {"SMALLINT", "INT"},    {"FLOAT", "DOUBLE"}, {"REAL", "DOUBLE"},
    {"DECIMAL", "DOUBLE or BIGINT"}, {"NUMERIC", "DOUBLE or BIGINT"}, {"DEC", "DOUBLE or BIGINT"},
    {"CHAR", "STRING"},  {"BINARY", "BYTES"},    {"DATE", "TIMESTAMP(3)"}, {"TIME", "TIMESTAMP(3)"},
    {"TIMESTAMP_LTZ", "TIMESTAMP(3)"},
};

/* A parse in progress: the text, the position, the column being read (1-based) for messages. */
typedef struct parser {
    const char *text;
    const char *p;
    int col;
    flint_err *err;
} parser;

static void skip_space(parser *ps) {
    while (isspace((unsigned char)*ps->p)) ps->p++;
}

static bool is_ident_start(int c) { return isalpha(c) || c == '_'; }
static bool is_ident_char(int c) { return isalnum(c) || c == '_'; }

/* Read a column name into a new string (*out); plain identifiers or `backquoted` names, in which
 * `` stands for one backquote. */
static int parse_name(parser *ps, char **out) {
    const char *p = ps->p;
    if (*p == '`') {
        size_t n = 0, cap = 16;
        char *name = xmalloc(cap);
        for (p++;; p++) {
            if (*p == '\0') {
                free(name);
                return flint_err_set(ps->err, FLINT_INVALID,
                                     "column %d: unterminated backquoted name", ps->col);
            }
            if (*p == '`') {
                if (p[1] != '`') break;
                p++;
            }
            if (n + 2 > cap) name = xrealloc(name, cap *= 2);
            name[n++] = *p;
        }
        name[n] = '\0';
        if (n == 0) {
            free(name);
            return flint_err_set(ps->err, FLINT_INVALID, "column %d has an empty name ``",
                                 ps->col);
        }
        ps->p = p + 1;
        *out = name;
        return FLINT_OK;
    }
    if (!is_ident_start((unsigned char)*p)) {
        size_t n = strcspn(p, ",");
        return flint_err_set(ps->err, FLINT_INVALID,
                             "column %d: expected a column name (a letter or '_' first, or "
                             "`backquoted`), got '%.*s'",
                             ps->col, (int)(n > 40 ? 40 : n), p);
    }
    while (is_ident_char((unsigned char)*p)) p++;
    *out = xstrndup(ps->p, (size_t)(p - ps->p));
    ps->p = p;
    return FLINT_OK;
}

/* Read a type ("BIGINT", "VARCHAR(20)", "TIMESTAMP(3)") for the column called name. */
static int parse_type(parser *ps, const char *name, flint_type *out) {
    const char *w = ps->p;
    while (is_ident_char((unsigned char)*ps->p)) ps->p++;
    size_t wl = (size_t)(ps->p - w);
    if (wl == 0) {
        size_t n = strcspn(w, ",");
        return flint_err_set(ps->err, FLINT_INVALID,
                             "column %d '%s': expected a type (" TYPES_EXPECTED "), got '%.*s'",
                             ps->col, name, (int)(n > 40 ? 40 : n), w);
    }
    const type_word *tw = NULL;
    for (size_t i = 0; i < sizeof type_words / sizeof type_words[0]; i++)
        if (strlen(type_words[i].word) == wl && strncasecmp(type_words[i].word, w, wl) == 0)
            tw = &type_words[i];
    if (!tw) {
        for (size_t i = 0; i < sizeof unsupported_words / sizeof unsupported_words[0]; i++)
            if (strlen(unsupported_words[i].word) == wl &&
                strncasecmp(unsupported_words[i].word, w, wl) == 0)
                return flint_err_set(ps->err, FLINT_UNSUPPORTED,
                                     "type '%.*s' of column %d '%s' is not supported by Flint; "
                                     "use %s",
                                     (int)wl, w, ps->col, name, unsupported_words[i].use);
        return flint_err_set(ps->err, FLINT_INVALID,
                             "unknown type '%.*s' for column %d '%s'; expected " TYPES_EXPECTED,
                             (int)(wl > 40 ? 40 : wl), w, ps->col, name);
    }
    const char *after_word = ps->p;
    skip_space(ps);
    if (*ps->p == '(') {
        const char *q = ps->p + 1;
        while (isspace((unsigned char)*q)) q++;
        char *end;
        long v = isdigit((unsigned char)*q) ? strtol(q, &end, 10) : -1;
        if (v >= 0) {
            q = end;
            while (isspace((unsigned char)*q)) q++;
        }
        if (v < 0 || *q != ')')
            return flint_err_set(ps->err, FLINT_INVALID,
                                 "column %d '%s': malformed type '%.*s(...': expected "
                                 "%s(<number>)",
                                 ps->col, name, (int)wl, w, tw->word);
        if (tw->arg == ARG_NONE)
            return flint_err_set(ps->err, FLINT_INVALID,
                                 "column %d '%s': type %s takes no length or precision",
                                 ps->col, name, tw->word);
        if (tw->arg == ARG_LENGTH && v < 1)
            return flint_err_set(ps->err, FLINT_INVALID,
                                 "column %d '%s': %s(%ld): the length must be at least 1",
                                 ps->col, name, tw->word, v);
        if (tw->arg == ARG_PRECISION && v != 3)
            return flint_err_set(ps->err, FLINT_UNSUPPORTED,
                                 "column %d '%s': TIMESTAMP(%ld) is not supported: Flint "
                                 "timestamps have millisecond precision, TIMESTAMP(3)",
                                 ps->col, name, v);
        ps->p = q + 1;
    } else {
        ps->p = after_word;
    }
    *out = tw->type;
    return FLINT_OK;
}

/* Append name to text, backquoted unless it is a plain identifier. */
static void append_name(char **text, size_t *len, size_t *cap, const char *name) {
    bool plain = is_ident_start((unsigned char)name[0]);
    for (const char *p = name; *p && plain; p++) plain = is_ident_char((unsigned char)*p);
    size_t need = *len + 2 * strlen(name) + 3;
    if (need > *cap) {
        while (need > *cap) *cap *= 2;
        *text = xrealloc(*text, *cap);
    }
    char *t = *text + *len;
    if (!plain) *t++ = '`';
    for (const char *p = name; *p; p++) {
        if (*p == '`') *t++ = '`';
        *t++ = *p;
    }
    if (!plain) *t++ = '`';
    *len = (size_t)(t - *text);
}

static void append_str(char **text, size_t *len, size_t *cap, const char *s) {
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap) *cap *= 2;
        *text = xrealloc(*text, *cap);
    }
    memcpy(*text + *len, s, n);
    *len += n;
}

static char *canonical_text(const flint_schema *s) {
    size_t len = 0, cap = 64;
    char *text = xmalloc(cap);
    for (int i = 0; i < s->n; i++) {
        if (i) append_str(&text, &len, &cap, ", ");
        append_name(&text, &len, &cap, s->names[i]);
        append_str(&text, &len, &cap, " ");
        append_str(&text, &len, &cap, flint_type_name(s->types[i]));
    }
    text[len] = '\0';
    return text;
}

/* The masks of flint_row_check (flint/row.h) from s's types. */
static void set_check_masks(flint_schema *s) {
    s->var_mask = s->int_mask = s->bool_mask = 0;
    for (int i = 0; i < s->n && i < 64; i++) {
        uint64_t bit = UINT64_C(1) << i;
        if (row_type_is_var(s->types[i])) s->var_mask |= bit;
        if (s->types[i] == FLINT_INT) s->int_mask |= bit;
        if (s->types[i] == FLINT_BOOLEAN) s->bool_mask |= bit;
    }
}

int flint_schema_parse(const char *text, flint_schema **out, flint_err *err) {
    assert(out);
    *out = NULL;
    if (!text) return flint_err_set(err, FLINT_INVALID, "no schema: expected a column list "
                                                        "such as 'word STRING, n BIGINT'");
    parser ps = {text, text, 1, err};
    int cap = 8, n = 0;
    flint_schema *s = XNEW(flint_schema);
    s->types = xmalloc(sizeof *s->types * (size_t)cap);
    s->names = xmalloc(sizeof *s->names * (size_t)cap);
    int rc = FLINT_OK;
    for (;;) {
        ps.col = n + 1;
        skip_space(&ps);
        if (*ps.p == '\0') {
            if (n == 0)
                rc = flint_err_set(err, FLINT_INVALID,
                                   "empty column list: expected columns such as "
                                   "'word STRING, n BIGINT'");
            else
                rc = flint_err_set(err, FLINT_INVALID,
                                   "trailing comma after column %d '%s'", n, s->names[n - 1]);
            break;
        }
        if (*ps.p == ',') {
            rc = n == 0 ? flint_err_set(err, FLINT_INVALID,
                                        "column 1 is empty: the column list starts with a comma")
                        : flint_err_set(err, FLINT_INVALID,
                                        "column %d is empty: two commas after column %d '%s'",
                                        n + 1, n, s->names[n - 1]);
            break;
        }
        if (n == FLINT_MAX_FIELDS) {
            rc = flint_err_set(err, FLINT_TOO_LARGE, "more than %d columns", FLINT_MAX_FIELDS);
            break;
        }
        char *name = NULL;
        if ((rc = parse_name(&ps, &name)) != FLINT_OK) break;
        skip_space(&ps);
        if (*ps.p == '\0' || *ps.p == ',') {
            rc = flint_err_set(err, FLINT_INVALID,
                               "column %d '%s' has no type; expected " TYPES_EXPECTED, ps.col,
                               name);
            free(name);
            break;
        }
        flint_type t = FLINT_STRING;
        if ((rc = parse_type(&ps, name, &t)) != FLINT_OK) {
            free(name);
            break;
        }
        for (int i = 0; i < n; i++) {
            if (strcmp(s->names[i], name) == 0) {
                rc = flint_err_set(err, FLINT_INVALID, "duplicate column '%s' (columns %d and %d)",
                                   name, i + 1, n + 1);
                break;
            }
        }
        if (rc != FLINT_OK) {
            free(name);
            break;
        }
        if (n == cap) {
            cap *= 2;
            s->types = xrealloc(s->types, sizeof *s->types * (size_t)cap);
            s->names = xrealloc(s->names, sizeof *s->names * (size_t)cap);
        }
        s->names[n] = name;
        s->types[n] = t;
        s->n = ++n;
        skip_space(&ps);
        if (*ps.p == '\0') break;
        if (*ps.p != ',') {
            size_t l = strcspn(ps.p, ",");
            rc = flint_err_set(err, FLINT_INVALID,
                               "column %d '%s': unexpected '%.*s' after the type %s (columns are "
                               "separated by ',')",
                               n, name, (int)(l > 40 ? 40 : l), ps.p, flint_type_name(t));
            break;
        }
        ps.p++;
    }
    if (rc != FLINT_OK) {
        flint_schema_free(s);
        return rc;
    }
    s->text = canonical_text(s);
    set_check_masks(s);
    *out = s;
    return FLINT_OK;
}

void flint_schema_free(flint_schema *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->names[i]);
    free(s->names);
    free(s->types);
    free(s->text);
    free(s);
}

/* Fields from[0..n) of s (all of them when from is NULL). */
static flint_schema *schema_select(const flint_schema *s, const int *from, int n) {
    assert(s && n >= 0);
    flint_schema *c = XNEW(flint_schema);
    c->n = n;
    c->types = xmalloc(sizeof *c->types * (size_t)(n ? n : 1));
    c->names = xmalloc(sizeof *c->names * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        int f = from ? from[i] : i;
        assert(f >= 0 && f < s->n);
        c->types[i] = s->types[f];
        c->names[i] = xstrdup(s->names[f]);
    }
    c->text = from ? canonical_text(c) : xstrdup(s->text);
    set_check_masks(c);
    return c;
}

flint_schema *flint_schema_copy(const flint_schema *s) {
    assert(s);
    return schema_select(s, NULL, s->n);
}

flint_schema *flint_schema_select(const flint_schema *s, const int *from, int n) {
    assert(from && n >= 1);
    return schema_select(s, from, n);
}

/* ---- accessors ----------------------------------------------------------------------------- */

int flint_schema_field_count(const flint_schema *s) {
    assert(s);
    return s->n;
}

int flint_schema_field_index(const flint_schema *s, const char *name) {
    assert(s && name);
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return i;
    return -1;
}

const char *flint_schema_field_name(const flint_schema *s, int i) {
    assert(s && i >= 0 && i < s->n);
    return s->names[i];
}

flint_type flint_schema_field_type(const flint_schema *s, int i) {
    assert(s && i >= 0 && i < s->n);
    return s->types[i];
}

const char *flint_schema_text(const flint_schema *s) {
    assert(s);
    return s->text;
}

bool flint_schema_equal(const flint_schema *a, const flint_schema *b) {
    if (a == b) return true;
    if (!a || !b || a->n != b->n) return false;
    for (int i = 0; i < a->n; i++)
        if (a->types[i] != b->types[i] || strcmp(a->names[i], b->names[i]) != 0) return false;
    return true;
}
