/* fuzz_genome.c - libFuzzer harness for the genome parsers (text and JSON).
 * Whatever the input, parsing must not crash, and anything accepted must
 * round-trip: format -> parse gives the same genome and the same hash, and
 * JSON -> parse gives it too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "genome/genome.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    sh_genome g, back;
    sh_err err;
    int ok = sh_genome_parse(text, &g, &err) == 0 || sh_genome_from_json(text, &g, &err) == 0;
    if (ok) {
        static char canon[SH_GENOME_TEXT_MAX];
        if (sh_genome_format(&g, canon, sizeof canon, &err)) abort();
        if (sh_genome_parse(canon, &back, &err)) abort();
        if (sh_genome_hash(&back) != sh_genome_hash(&g)) abort();
        char *js = sh_genome_to_json(&g, false, &err);
        if (!js) abort();
        if (sh_genome_from_json(js, &back, &err) || !sh_genome_equal(&g, &back)) abort();
        free(js);
    }
    free(text);
    return 0;
}
