/*
 * keys.h — which key a request names: one hot key, uniform over N, or
 * Zipfian over N (Gray et al.'s generator, as YCSB uses: key 0 hottest),
 * and the per-thread random numbers behind every choice of the run.
 *
 * Invariants: keygen_next answers an index in [0, n); a keygen is read-only
 * once initialised (threads share it); each thread owns its rng (no
 * sharing, no locks), seeded from --seed and the thread's number so a run
 * is repeatable.
 */
#ifndef INVCORE_BENCH_KEYS_H
#define INVCORE_BENCH_KEYS_H

#include <stdint.h>

#include "config.h"

struct rng {
    uint64_t s[4]; /* xoshiro256** state */
};

void rng_seed(struct rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, n), n >= 1 (Lemire's multiply-shift; its bias, at most
 * n / 2^64, is far below anything a run can see). */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Uniform in [0, 1). */
double rng_unit(struct rng *r);

struct keygen {
    enum bench_keys kind;
    uint64_t n;
    /* zipf only */
    double theta, alpha, zetan, eta, half_pow_theta;
};

/* Zipf precomputes zeta(n, theta): O(n) once, about 0.3 s at 10^8. */
void keygen_init(struct keygen *g, enum bench_keys kind, uint64_t n, double theta);
uint64_t keygen_next(const struct keygen *g, struct rng *r);

#endif
