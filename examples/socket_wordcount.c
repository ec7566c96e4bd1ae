/* Socket WordCount: counts the words of the lines a TCP server sends and prints a rolling count
 * per word to the taskmanagers' .out files (as Flink's SocketWindowWordCount, without windows).
 *
 *   nc -lk 9999 &            (then type lines)
 *   flint run build/examples/socket_wordcount.so --host localhost --port 9999
 *
 * The job ends when the server closes the connection. Words: maximal runs of [a-z0-9] in the
 * lower-cased (ASCII) text. */
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

/* ASCII only, whatever the locale: [A-Za-z0-9] are word characters. */
static int word_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
static char lower(unsigned char c) { return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c); }

void split_words(flint_ctx *ctx, const flint_row *line, flint_collector *out) {
    size_t len;
    const char *s = flint_row_get_string(line, 0, &len);
    char small[256];
    size_t i = 0;
    while (i < len) {
        while (i < len && !word_char((unsigned char)s[i])) i++;
        size_t start = i;
        while (i < len && word_char((unsigned char)s[i])) i++;
        size_t n = i - start;
        if (n == 0) continue;
        char *w = n <= sizeof small ? small : malloc(n);
        if (!w) {
            flint_ctx_fail(ctx, "out of memory for a word of %zu bytes", n);
            return;
        }
        for (size_t k = 0; k < n; k++) w[k] = lower((unsigned char)s[start + k]);
        flint_row_builder *b = flint_out_row(out);
        flint_row_set_string(b, 0, w, n);
        flint_row_set_long(b, 1, 1);
        flint_emit(out);
        if (w != small) free(w);
    }
}

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *host = NULL;
    int port = 0;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            flint_env_fail(env, "argument '%s' needs a value; usage: socket_wordcount.so --host H --port P", argv[i]);
            return FLINT_INVALID;
        }
        if (strcmp(argv[i], "--host") == 0) {
            host = argv[i + 1];
        } else if (strcmp(argv[i], "--port") == 0) {
            char *end;
            long p = strtol(argv[i + 1], &end, 10);
            if (*end || p < 1 || p > 65535) {
                flint_env_fail(env, "--port: expected a port number 1..65535, got '%s'", argv[i + 1]);
                return FLINT_INVALID;
            }
            port = (int)p;
        } else {
            flint_env_fail(env, "unknown argument '%s'; usage: socket_wordcount.so --host H --port P", argv[i]);
            return FLINT_INVALID;
        }
    }
    if (!host || !port) {
        flint_env_fail(env, "usage: socket_wordcount.so --host H --port P");
        return FLINT_INVALID;
    }
    flint_stream *lines = flint_source_socket(env, host, port);
    flint_stream *words = flint_name(flint_flat_map(lines, FLINT_FN(split_words), "word STRING, n BIGINT"), "Splitter");
    flint_stream *counts = flint_sum(flint_key_by(words, "word"), "n");
    flint_sink_print(counts);
    return flint_execute(env, "Socket WordCount");
}
