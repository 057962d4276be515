/*
 * keys.c — xoshiro256** (Blackman and Vigna) seeded through splitmix64,
 * and the three key distributions of --keys.
 *
 * The Zipfian draw is Gray et al., "Quickly generating billion-record
 * synthetic databases" (SIGMOD 1994), the generator YCSB uses: constant
 * time per draw after one pass computing zeta(n, theta).
 */
#include "keys.h"

#include <assert.h>
#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * UINT64_C(0xd1342543de82ef95));
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    /* xoshiro's one forbidden state is all zeros; splitmix never yields
     * four zeros in a row, but say so. */
    assert(r->s[0] | r->s[1] | r->s[2] | r->s[3]);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
    assert(n >= 1);
    uint64_t v = (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
    assert(v < n);
    return v;
}

double rng_unit(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53; /* 53 random bits: every double in [0,1) */
}

static double zeta(uint64_t n, double theta)
{
    double sum = 0;
    for (uint64_t i = 1; i <= n; i++)
        sum += 1.0 / pow((double)i, theta);
    return sum;
}

void keygen_init(struct keygen *g, enum bench_keys kind, uint64_t n, double theta)
{
    assert(n >= 1);
    g->kind = kind;
    g->n = kind == KEYS_HOT ? 1 : n;
    g->theta = theta;
    if (kind != KEYS_ZIPF || n < 2)
        return;
    assert(theta > 0 && theta < 1);
    g->alpha = 1.0 / (1.0 - theta);
    g->zetan = zeta(n, theta);
    double zeta2 = zeta(2, theta);
    g->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / g->zetan);
    g->half_pow_theta = pow(0.5, theta);
}

uint64_t keygen_next(const struct keygen *g, struct rng *r)
{
    if (g->n == 1)
        return 0;
    if (g->kind == KEYS_UNIFORM)
        return rng_below(r, g->n);
    double u = rng_unit(r);
    double uz = u * g->zetan;
    if (uz < 1.0)
        return 0;
    if (uz < 1.0 + g->half_pow_theta)
        return 1;
    uint64_t k = (uint64_t)((double)g->n * pow(g->eta * u - g->eta + 1.0, g->alpha));
    return k < g->n ? k : g->n - 1; /* rounding at u near 1 */
}
