/* The word splitter of the word count examples (wordcount.c, socket_wordcount.c), shared as the
 * flat_map function tokenize: each example builds into its own job artifact against the public
 * headers only, so this header is included, not linked (the Makefile rebuilds the examples when it
 * changes and does not build it as a job). tokenize is not static: the job names it with FLINT_FN
 * and the taskmanager finds it in the artifact by that name.
 *
 * Words are the maximal runs of [a-z0-9] in the lower-cased (ASCII) text, whatever the locale. */
#ifndef FLINT_EXAMPLES_WORDS_H
#define FLINT_EXAMPLES_WORDS_H
#include <stdlib.h>

#include <flint/flint.h>

static int words_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
static char words_lower(unsigned char c) { return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c); }

/* flat_map: one line -> ("word", 1) for each word (output schema "word STRING, n BIGINT"). */
void tokenize(flint_ctx *ctx, const flint_row *line, flint_collector *out) {
    size_t len;
    const char *s = flint_row_get_string(line, 0, &len);
    char small[256];
    size_t i = 0;
    while (i < len) {
        while (i < len && !words_char((unsigned char)s[i])) i++;
        size_t start = i;
        while (i < len && words_char((unsigned char)s[i])) i++;
        size_t n = i - start;
        if (n == 0) continue;
        char *w = n <= sizeof small ? small : malloc(n);
        if (!w) {
            flint_ctx_fail(ctx, "out of memory for a word of %zu bytes", n);
            return;
        }
        for (size_t k = 0; k < n; k++) w[k] = words_lower((unsigned char)s[start + k]);
        flint_row_builder *b = flint_out_row(out);
        flint_row_set_string(b, 0, w, n);
        flint_row_set_long(b, 1, 1);
        flint_emit(out);
        if (w != small) free(w);
    }
}

#endif
