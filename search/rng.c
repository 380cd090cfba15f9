/* rng.c - the search's draws from the tool's generator (util/rng.h). */
#include "search/rng.h"

int sh_rng_int(sh_rng *r, int lo, int hi)
{
    if (hi <= lo)
        return lo;
    uint64_t span = (uint64_t)((int64_t)hi - (int64_t)lo) + 1;
    return (int)((int64_t)lo + (int64_t)(sh_rng_next(r) % span));
}

int sh_rng_bernoulli(sh_rng *r, double p)
{
    return sh_rng_uniform(r) < p;
}
