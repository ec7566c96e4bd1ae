/* WordCount: counts the words of a text file and writes a rolling count per word.
 *
 *   flint run build/examples/wordcount.so [--rebalance] --input FILE --output DIR
 *
 * Words are the maximal runs of [a-z0-9] in the lower-cased (ASCII) text. Every occurrence of a
 * word updates its count, and each update is written as a line "word count" to the part files
 * DIR/part-<subtask>: the largest count of a word is its total. --rebalance spreads the lines
 * over the tokenizers round robin (the source reads the file with parallelism 1); without it the
 * source's lines go to the tokenizers as the job's default partitioning says. */
#include <stdlib.h>
#include <string.h>

#include <flint/flint.h>

#include "words.h"   /* tokenize: one line -> ("word", 1) for each word */

static const char usage[] = "usage: wordcount.so [--rebalance] --input FILE --output DIR";

int flint_job_main(flint_env *env, int argc, char **argv) {
    const char *input = NULL, *output = NULL;
    bool rebalance = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rebalance") == 0) {
            rebalance = true;
        } else if (strcmp(argv[i], "--input") != 0 && strcmp(argv[i], "--output") != 0) {
            flint_env_fail(env, "unknown argument '%s'; %s", argv[i], usage);
            return FLINT_INVALID;
        } else if (i + 1 >= argc) {
            flint_env_fail(env, "argument '%s' needs a value; %s", argv[i], usage);
            return FLINT_INVALID;
        } else if (strcmp(argv[i], "--input") == 0) {
            input = argv[++i];
        } else {
            output = argv[++i];
        }
    }
    if (!input || !output) {
        flint_env_fail(env, "%s", usage);
        return FLINT_INVALID;
    }
    flint_stream *lines = flint_source_text_file(env, input);
    if (rebalance) lines = flint_rebalance(lines);
    flint_stream *words = flint_name(flint_flat_map(lines, FLINT_FN(tokenize), "word STRING, n BIGINT"), "Tokenizer");
    flint_stream *counts = flint_sum(flint_key_by(words, "word"), "n");
    flint_sink_text_file(counts, output);
    return flint_execute(env, "WordCount");
}
