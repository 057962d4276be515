/*
 * workload.h — what a scenario sends and what its replies mean, for each
 * target (invcored over RESP, invcored over HTTP, Redis with Lua), as one
 * state machine per simulated buyer ("session").
 *
 * A session is idle, waiting for a reply, or thinking (a checkout between
 * its hold and its commit or release). workload_next appends the session's
 * next request to an output buffer; workload_reply classifies the answer,
 * counts its outcome and advances the session. The event loop owns the
 * sockets and the timing; this module never blocks and never allocates on
 * the request path (the buffer grows only up to a connection's pipeline of
 * requests, WORKLOAD_REQUEST_MAX bytes each).
 *
 * Invariants: a session has at most one request in flight; every unit the
 * client counts as sold was acknowledged by the server (sold_units,
 * commit_units); a request whose answer never came is counted as unknown
 * (the check allows for it, never more).
 */
#ifndef INVCORE_BENCH_WORKLOAD_H
#define INVCORE_BENCH_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "keys.h"

/* The longest request any scenario builds (a 3-line HOLD.CREATE with a
 * buyer, or an HTTP request with its headers and token). */
#define WORKLOAD_REQUEST_MAX (1024 + BENCH_TOKEN_MAX)
#define WORKLOAD_SHA_LEN 40
/* Redis: the expiry zset of the Lua holds and the sweep's batch. */
#define WORKLOAD_REDIS_EXPIRY_KEY "invcore-bench:expiry"
#define WORKLOAD_REDIS_SWEEP_BATCH 1000

enum op_kind {
    OP_PING,
    OP_DECR,
    OP_FLOOR,
    OP_BROWSE,
    OP_HOLD,
    OP_COMMIT,
    OP_RELEASE,
    OP_KINDS,
};

/* Outcome counters; the names are the report's (workload_counter_name). */
enum counter {
    CNT_SOLD_UNITS, /* units sold by decrements (decr, floor) */
    CNT_SOLD_OUT, /* refused: no stock (INSUFFICIENT / 422) */
    CNT_HELD, /* holds created */
    CNT_LIMITED, /* holds refused by the buyer limit */
    CNT_COMMITTED, /* holds committed */
    CNT_COMMIT_UNITS, /* units sold by commits */
    CNT_RELEASED, /* holds released */
    CNT_ABANDONED, /* carts left to expire */
    CNT_EXPIRED_FIRST, /* commit or release found the hold already expired */
    CNT_READS, /* browse reads */
    CNT_UNKNOWN_DECR, /* decrements sent, never answered (units) */
    CNT_UNKNOWN_COMMIT, /* commit units sent, never answered */
    CNT_KINDS,
};

const char *workload_counter_name(enum counter c);

/* idle: no transaction; ready: begun, its next request not sent yet;
 * waiting: a request in flight; thinking: until think_until_ns. */
enum session_state { SESSION_IDLE, SESSION_READY, SESSION_WAITING, SESSION_THINKING };
enum session_kind { SESSION_DECR, SESSION_FLOOR, SESSION_BROWSE, SESSION_CHECKOUT, SESSION_PING };

struct session {
    enum session_state state;
    enum session_kind kind; /* of the current transaction (mix picks per transaction) */
    uint8_t end_action; /* checkout: 0 commit, 1 release, 2 abandon */
    uint8_t lines;
    uint32_t qty[BENCH_LINES_MAX];
    uint64_t key[BENCH_LINES_MAX];
    uint64_t hold_seq;
    uint64_t think_until_ns;
    uint64_t started_ns; /* the transaction's intended start (open loop) */
};

/* Read-only after workload_init; shared by every thread. */
struct workload {
    const struct bench_config *cfg;
    struct keygen keys;
    uint64_t run_nonce; /* makes hold ids unique across runs on one server */
    char sha_floor[WORKLOAD_SHA_LEN + 1];
    char sha_hold[WORKLOAD_SHA_LEN + 1];
    char sha_end[WORKLOAD_SHA_LEN + 1];
    char sha_sweep[WORKLOAD_SHA_LEN + 1];
};

/* A reply, whatever the transport. */
struct reply {
    bool error; /* RESP error, or HTTP status >= 400 */
    int http_status; /* 0 over RESP */
    const char *text; /* RESP error or status text ("" if none) */
    size_t text_len;
};

/* An output buffer that grows (bounded by the caller's pipeline). */
struct outbuf {
    char *data;
    size_t len, cap;
};
int outbuf_reserve(struct outbuf *b, size_t more);

void workload_init(struct workload *w, const struct bench_config *cfg, uint64_t run_nonce);

/* Redis: the Lua scripts' sources (SCRIPT LOAD'ed by setup, in order
 * floor, hold, end, sweep). */
extern const char *const workload_redis_scripts[4];

/* Starts a new transaction on an idle session (picks its kind, keys and
 * cart) at intended time now_ns. */
void workload_begin(const struct workload *w, struct session *s, struct rng *r, uint64_t now_ns);
/* Appends the session's next request; answers its kind. The session must be
 * idle-with-a-transaction (after workload_begin) or thinking with its
 * think time over. -1 when the buffer cannot grow. */
int workload_request(const struct workload *w, struct session *s, unsigned thread, unsigned conn,
                     unsigned slot, struct outbuf *out, enum op_kind *kind);
/* Classifies the reply to s's request of `kind`, counts it in counters,
 * and advances s: true when the reply is an error the scenario does not
 * expect. After it the session is idle (transaction over) or thinking. */
bool workload_reply(const struct workload *w, struct session *s, enum op_kind kind,
                    const struct reply *rep, struct rng *r, uint64_t now_ns,
                    uint64_t counters[CNT_KINDS]);
/* A request that will never be answered (the connection died or the
 * drain timed out): counts its units as unknown. */
void workload_lost(const struct workload *w, const struct session *s, enum op_kind kind,
                   uint64_t counters[CNT_KINDS]);
/* Redis sweep request (EVALSHA of the expiry script). */
int workload_sweep_request(const struct workload *w, struct outbuf *out);

#endif
