/*
 * command.h — the command table and the session a connection carries
 * through it. This layer knows nothing of sockets: it takes one parsed
 * request (argv), calls the engine through include/invcore.h only, and
 * appends exactly one reply to a resp_out. The fuzzer and the tests drive
 * it directly.
 *
 * Invariants: every request gets exactly one reply; arity is checked in
 * one place (command_exec) from the table; before AUTH (when a password is
 * set) only AUTH, HELLO and QUIT run; no handler aborts on client input.
 */
#ifndef INV_SERVER_COMMAND_H
#define INV_SERVER_COMMAND_H

#include <stdbool.h>
#include <stdint.h>

#include "invcore.h"
#include "server/config.h"
#include "server/resp.h"
#include "server/stats.h"

/* Shared, read-only once the loops run. */
typedef struct {
    inv_engine *e;
    const server_config *cfg;
    stats_global *g;
    int64_t start_ms; /* CLOCK_REALTIME at start */
    int port;         /* the port actually bound */
    unsigned threads;
} server_ctx;

/* Per-loop buffers for list replies (allocated once, reused). */
typedef struct cmd_scratch cmd_scratch;
cmd_scratch *command_scratch_new(void);
void command_scratch_free(cmd_scratch *s);

typedef struct {
    const server_ctx *ctx;
    stats_thread *st;     /* may be NULL */
    cmd_scratch *scratch;
    uint64_t id;          /* client id (HELLO) */
    bool authed;
    bool quit;            /* QUIT: close once the reply is sent */
    /* MULTI ... EXEC (cmd_multi.c); all zero outside a transaction */
    bool multi_open;
    bool multi_aborted;   /* a command was refused: EXEC answers EXECABORT */
    uint32_t multi_count; /* commands queued */
    size_t multi_bytes;   /* bytes queued, counted against max_query */
    struct multi_chunk *multi_chunks; /* the queue's memory */
    struct multi_rec *multi_head, *multi_tail; /* queued, in order */
} session;

void session_init(session *s, const server_ctx *ctx, stats_thread *st,
                  cmd_scratch *scratch);
/* Ends an open transaction: drops and frees its queue (DISCARD, RESET, a
 * closed connection). No-op outside MULTI. */
void multi_discard(session *s);
/* The parser limits for this session's next request (tight before AUTH). */
void session_limits(const session *s, resp_limits *out);

/* Runs one request and appends its reply to o (o->proto may change: HELLO).
 * Returns true when the command may have written to the engine: the caller
 * must then hold this reply until inv_last_write_position() is durable. */
bool command_exec(session *s, resp_out *o, const resp_arg *argv, size_t argc);

/* Number of commands in the table (COMMAND COUNT). */
size_t command_count(void);

#endif /* INV_SERVER_COMMAND_H */
