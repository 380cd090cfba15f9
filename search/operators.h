/* operators.h - genome-level variation for the architecture search: random
 * genomes inside a space, mutation (change a layer's mixer or its parameters,
 * insert, delete, duplicate, swap layers, change widths), layer-wise crossover
 * (one-point, two-point, uniform), repair (so every child is valid and inside
 * the space), and seeds from the LFM2 presets scaled into the space.  All
 * randomness comes from the caller's sh_rng, so results are reproducible. */
#ifndef SH_SEARCH_OPERATORS_H
#define SH_SEARCH_OPERATORS_H

#include "genome/genome.h"
#include "search/moea.h"
#include "search/space.h"

void sh_op_random_genome(const sh_space *s, sh_rng *r, sh_genome *out);
void sh_op_mutate(const sh_space *s, sh_rng *r, sh_genome *g);

typedef enum sh_xover_kind { SH_XOVER_ONE_POINT = 0, SH_XOVER_TWO_POINT, SH_XOVER_UNIFORM, SH_XOVER_COUNT } sh_xover_kind;
void sh_op_crossover_kind(const sh_space *s, sh_rng *r, sh_xover_kind kind, const sh_genome *a,
                          const sh_genome *b, sh_genome *c1, sh_genome *c2);
/* Picks one of the three kinds at random. */
void sh_op_crossover(const sh_space *s, sh_rng *r, const sh_genome *a, const sh_genome *b,
                     sh_genome *c1, sh_genome *c2);

/* Makes g valid and inside s (clamps, snaps, fixes head divisibility, layer
 * count, disallowed kinds); falls back to a random genome if that fails. */
void sh_op_repair(const sh_space *s, sh_rng *r, sh_genome *g);

/* The LFM2 presets scaled into the space (hidden, depth, widths, heads,
 * attention placement kept proportionally), repaired.  Returns how many were
 * written (at most max). */
int sh_op_preset_seeds(const sh_space *s, sh_genome *out, int max);

/* The engine's vtable over sh_genome individuals (ctx = the space). */
void sh_genome_ops(const sh_space *s, sh_moea_ops *ops);

#endif
