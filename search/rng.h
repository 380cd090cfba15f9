/* rng.h - the search's random numbers: the tool's generator (util/rng.h,
 * xoshiro256** seeded through splitmix64; four words of state, saved at every
 * generation boundary so a resumed run continues the same stream) plus the
 * draws the search makes from it. */
#ifndef SH_SEARCH_RNG_H
#define SH_SEARCH_RNG_H

#include <stdint.h>

#include "util/rng.h"

int sh_rng_int(sh_rng *r, int lo, int hi);     /* uniform in [lo, hi]    */
int sh_rng_bernoulli(sh_rng *r, double p);     /* 1 with probability p   */

#endif
