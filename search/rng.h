/* rng.h - the search's random number generator: xoshiro256** seeded through
 * splitmix64.  Its whole state is four words, so a run can save it at every
 * generation boundary and resume with exactly the same stream. */
#ifndef SH_SEARCH_RNG_H
#define SH_SEARCH_RNG_H

#include <stdint.h>

typedef struct sh_rng {
    uint64_t s[4];
} sh_rng;

void sh_rng_seed(sh_rng *r, uint64_t seed);
uint64_t sh_rng_next(sh_rng *r);
double sh_rng_uniform(sh_rng *r);              /* [0, 1)                 */
int sh_rng_int(sh_rng *r, int lo, int hi);     /* uniform in [lo, hi]    */
int sh_rng_bernoulli(sh_rng *r, double p);     /* 1 with probability p   */

#endif
