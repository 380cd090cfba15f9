/* rng.h - the tool's one pseudo-random generator: xoshiro256** (Blackman and
 * Vigna) seeded through splitmix64.  Its whole state is four words, so a run
 * can save it and resume with exactly the same stream; every module of the
 * tool (search, capability, tests) draws from this code.  The per-genome
 * runtime keeps its own splitmix64 (evaluator/runtime/rt_synth.h): it is
 * compiled standalone for the devices and links nothing of the tool. */
#ifndef SH_UTIL_RNG_H
#define SH_UTIL_RNG_H

#include <stdint.h>

/* One splitmix64 step: advances *x by the golden-ratio increment and returns
 * the mixed value. */
uint64_t sh_splitmix64(uint64_t *x);

typedef struct sh_rng {
    uint64_t s[4];
} sh_rng;

void sh_rng_seed(sh_rng *r, uint64_t seed);    /* four splitmix64 steps from seed */
uint64_t sh_rng_next(sh_rng *r);
double sh_rng_uniform(sh_rng *r);              /* [0, 1), 53 random bits */

#endif
