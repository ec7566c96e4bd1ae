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

#include "words.h"   /* tokenize: one line -> ("word", 1) for each word */

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
    flint_stream *words = flint_name(flint_flat_map(lines, FLINT_FN(tokenize), "word STRING, n BIGINT"), "Splitter");
    flint_stream *counts = flint_sum(flint_key_by(words, "word"), "n");
    flint_sink_print(counts);
    return flint_execute(env, "Socket WordCount");
}
