/*
 * verify.h — invcore-bench's side channel to the server (plain hiredis,
 * blocking, never on the load's path): preloading the catalog, loading
 * the Redis scripts, and the flash-sale check.
 *
 * The check reads every key's available, reserved and committed before
 * the load and again after it has drained, and compares the change with
 * what the server acknowledged to the clients:
 *   - nothing oversold: no key's available, reserved or committed ends
 *     below 0 (a sale only takes units that are there);
 *   - units conserved: on every key, available + reserved falls by exactly
 *     what was sold (decrements + committed units; expiry and release move
 *     units from reserved back to available and change neither side);
 *     in total, committed rose by the acknowledged commit units and the
 *     rest of the fall equals the acknowledged decrements, each within the
 *     requests whose answer never came (counted as unknown).
 * --check-only has no acknowledgements: it checks that nothing is below 0
 * and that no key holds more units than --stock.
 *
 * Invariants: the check never changes the server; it reads at most
 * BENCH_CHECK_KEYS_MAX keys (config refuses a larger check).
 */
#ifndef INVCORE_BENCH_VERIFY_H
#define INVCORE_BENCH_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "workload.h"

#define VERIFY_PIPELINE 1000u /* requests per round trip of the side channel */
#define VERIFY_TIMEOUT_MS 30000u /* one reply of the side channel */
#define VERIFY_VERDICT_MAX 512

struct redisContext;

struct level_state {
    int64_t available, reserved, committed;
};

/* Connects (and AUTHs with --token) to host:resp_port. NULL with err. */
struct redisContext *verify_connect(const struct bench_config *c, char *err, size_t err_len);
/* Sets every key to --stock (invcored: the location, tracked items,
 * LEVEL.SET; Redis: a fresh hash). -1 with err naming the first refusal. */
int verify_preload(struct redisContext *ctx, const struct bench_config *c, char *err,
                   size_t err_len);
/* Redis: SCRIPT LOAD of the workload's scripts into w's shas. */
int verify_load_scripts(struct redisContext *ctx, struct workload *w, char *err, size_t err_len);
/* Reads every key (n = keys_n entries). -1 with err (a missing level
 * included: the run needs --preload). */
int verify_read(struct redisContext *ctx, const struct bench_config *c, struct level_state *out,
                char *err, size_t err_len);
/* The verdict of a run (before/after, the clients' counters) or of
 * --check-only (before == NULL, counters == NULL). true when it holds. */
bool verify_judge(const struct bench_config *c, const struct level_state *before,
                  const struct level_state *after, const uint64_t *counters, char *verdict,
                  size_t verdict_len);

#endif
