/*
 * command.h — the command table and the session a connection carries
 * through it. This layer knows nothing of sockets: it takes one parsed
 * request (argv), calls the engine through include/invcore.h only, and
 * appends exactly one reply to a resp_out. The fuzzer and the tests drive
 * it directly.
 *
 * Invariants: every request gets exactly one reply (CLIENT LIST and KILL
 * with a connection: deferred, see session_conn_ops); arity is checked in
 * one place (command_exec) from the table; before AUTH (when a password is
 * set) only AUTH, HELLO, QUIT and RESET run; no handler aborts on client
 * input.
 */
#ifndef INV_SERVER_COMMAND_H
#define INV_SERVER_COMMAND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "invcore.h"
#include "server/config.h"
#include "server/resp.h"
#include "server/stats.h"
#include "server/tokens.h"

/* Shared, read-only once the loops run. */
typedef struct {
    inv_tenants *tenants; /* every tenant; sessions hold references */
    token_registry *tokens; /* --tokens (empty set without one) */
    const server_config *cfg;
    stats_global *g;
    int64_t start_ms; /* CLOCK_REALTIME at start */
    int port; /* the port actually bound */
    int http_port; /* the HTTP port actually bound; 0: off */
    unsigned threads;
    /* Cluster mode (server/repl.h): cluster is --cluster (NULL: a single
     * node); repl is set once the node follows its cluster (server_set_repl,
     * after the loops started): until then a cluster node takes no write. */
    const char *cluster;
    _Atomic(struct repl *) repl;
} server_ctx;

/* ctx's cluster node, NULL before server_set_repl or on a single node. */
static inline struct repl *server_ctx_repl(const server_ctx *ctx)
{
    /* acquire: pairs with server_set_repl's release (the node is built). */
    return atomic_load_explicit(&((server_ctx *)ctx)->repl, memory_order_acquire);
}

/* A cluster node that takes no write now: a standby, a leader whose lease
 * ran out, or a node not following its cluster yet (server_set_repl). RESP
 * writes then get READONLY, HTTP writes 503. False on a single node. */
bool server_ctx_read_only(const server_ctx *ctx);

/* Per-loop buffers for list replies (allocated once, reused). */
typedef struct cmd_scratch cmd_scratch;
cmd_scratch *command_scratch_new(void);
void command_scratch_free(cmd_scratch *s);

/* ---- what the command layer asks of the connection it runs for ---------
 * CLIENT INFO/LIST/KILL need facts only the network layer has (addresses,
 * buffers) and, for LIST and KILL, every event loop. The server passes a
 * session_conn_ops; the command layer never sees a socket. */

#define CLIENT_ADDR_MAX 64u /* "[ipv6]:port" with its NUL fits */

/* One connection as CLIENT INFO/LIST shows it (filled by its own loop). */
typedef struct {
    char addr[CLIENT_ADDR_MAX]; /* peer "ip:port" ("[ip]:port" for IPv6) */
    char laddr[CLIENT_ADDR_MAX]; /* local end */
    int fd;
    int proto; /* 2 or 3 */
    int64_t age_s, idle_s;
    uint64_t qbuf, qbuf_free; /* unparsed input, room left in its buffer */
    uint64_t obl, omem, tot_mem; /* unsent replies, reply buffer, all buffers */
    bool closing; /* flag 'c': closes once its replies are out */
    bool want_write; /* events=rw */
    bool blocked; /* flag 'b': parked in FEED.READ BLOCK */
} conn_facts;

typedef enum { CLIENT_GATHER_LIST, CLIENT_GATHER_KILL } client_gather_kind;

/* Which connections a CLIENT LIST or CLIENT KILL is about. */
typedef struct {
    client_gather_kind kind;
    bool kill_old_form; /* CLIENT KILL addr: +OK or -ERR No such client */
    bool skipme; /* the requesting connection never matches */
    bool match_none; /* TYPE master|replica|pubsub, or an impossible addr */
    uint64_t self_id; /* the requesting session */
    uint64_t id; /* KILL ID n; 0: any */
    char addr[CLIENT_ADDR_MAX]; /* "": any */
    char laddr[CLIENT_ADDR_MAX]; /* "": any */
    size_t nids; /* LIST ID a b ...; 0: any */
    const uint64_t *ids; /* borrowed (the gather copies it); 0: matches none */
} client_filter;

typedef struct {
    /* Facts about this session's own connection (CLIENT INFO). */
    void (*facts)(void *conn, conn_facts *out);
    /* Starts a CLIENT LIST/KILL over every loop. Returns 0: the reply is
     * deferred (the server writes it with client_gather_reply once every
     * loop answered, and runs nothing else from this connection until
     * then); or -1: out of memory, nothing started, the caller replies. */
    int (*gather)(void *conn, const client_filter *f);
    /* Parks the connection: its FEED.READ BLOCK has nothing to answer yet.
     * No more of its requests run until the server has had
     * command_feed_resume write the reply (on each advance of the durable
     * position, and once at timeout_ms, 0: never). Returns 0: parked, the
     * handler writes no reply; or -1: the loop's bound of parked clients
     * is reached, nothing changed, the handler replies. */
    int (*block)(void *conn, uint64_t timeout_ms);
} session_conn_ops;

#define SESSION_NAME_MAX 512u /* bytes of a client name, lib-name, lib-ver */

/* The trailing options of the request being run (ID, REASON, REF): they
 * point into the request's arguments. */
typedef struct {
    const char *id, *ref;
    size_t id_len, ref_len;
    inv_reason reason;
    bool any;
} request_meta;

/* Longest command name, plus one: no row's name is longer (command.c). */
#define SESSION_CMD_NAME_MAX 32u

typedef struct {
    const server_ctx *ctx;
    /* The tenant this session addresses and what it may do (cmd_tenant.c
     * keeps these): tenant is a counted reference, NULL while none is
     * resolved (not authenticated yet, or the token's tenant does not
     * exist yet, or it was dropped); e is its engine (NULL with it). The
     * name is kept so a tenant created later is found by the next
     * request. */
    inv_tenant *tenant;
    inv_engine *e;
    char tenant_name[INV_TENANT_NAME_MAX + 1];
    size_t tenant_name_len;
    token_scope scope; /* TOKEN_SCOPE_NONE until authenticated */
    /* Authenticated by a --tokens token: its set (a reference) and entry,
     * and its digest to find it again after a reload. NULL: by
     * --requirepass, or no authentication configured. */
    token_set *tset;
    token_entry *tok;
    uint8_t tok_digest[TOKEN_DIGEST_BYTES];
    auth_throttle throttle; /* failed AUTH attempts on this connection */
    stats_thread *st; /* may be NULL */
    cmd_scratch *scratch;
    uint64_t id; /* client id (HELLO, CLIENT ID) */
    bool authed;
    bool quit; /* QUIT: close once the reply is sent */
    /* MULTI ... EXEC (cmd_multi.c); all zero outside a transaction */
    bool multi_open;
    bool multi_aborted; /* a command was refused: EXEC answers EXECABORT */
    uint32_t multi_count; /* commands queued */
    size_t multi_bytes; /* bytes queued, counted against max_query */
    struct multi_chunk *multi_chunks; /* the queue's memory */
    struct multi_rec *multi_head, *multi_tail; /* queued, in order */
    char *name; /* CLIENT SETNAME / HELLO SETNAME; NULL: none */
    /* A process-wide unique number of the name's value, given each time
     * one is set (0: no name): the actor of this session's writes is set
     * only when the thread's last one had another (command_exec). */
    uint64_t name_gen;
    size_t name_len;
    struct feed_session *feed; /* FEED.READ's reader and parked read (cmd_feed.c);
                                * NULL until the first FEED.READ */
    char *lib_name; /* CLIENT SETINFO LIB-NAME; NULL: none */
    char *lib_ver; /* CLIENT SETINFO LIB-VER; NULL: none */
    const char *last_cmd; /* static string: the last command run (cmd=) */
    /* The last command name looked up, byte for byte as the client sent
     * it, and its row: a connection mostly repeats one command, so the
     * next request with these bytes skips the hash (cmd_memo_len 0: none). */
    char cmd_memo_name[SESSION_CMD_NAME_MAX];
    uint8_t cmd_memo_len;
    int16_t cmd_memo; /* index in the command table */
    request_meta meta; /* the current request's ID / REASON / REF */
    /* MULTI: the transaction's request id (one ID among its commands),
     * copied: the queued requests' buffers are gone by EXEC */
    char multi_id[INV_REQUEST_ID_MAX];
    size_t multi_id_len;
    const session_conn_ops *conn_ops; /* NULL: no connection (fuzzer) */
    void *conn; /* passed back to conn_ops */
} session;

void session_init(session *s, const server_ctx *ctx, stats_thread *st, cmd_scratch *scratch);
/* Ends an open transaction: drops and frees its queue (DISCARD, RESET, a
 * closed connection). No-op outside MULTI. */
void multi_discard(session *s);
/* Frees what the session owns (its name strings, an open transaction's
 * queue, its tenant and token references); s may be reused after
 * session_init. */
void session_free(session *s);
/* RESET: back to a new connection's state (see command.c). */
void session_reset(session *s);
/* The parser limits for this session's next request (tight before AUTH). */
void session_limits(const session *s, resp_limits *out);

/* Runs one request and appends its reply to o (o->proto may change: HELLO).
 * Returns true when the command may have written to the engine: the caller
 * must then hold this reply until inv_last_write_position() is durable. */
bool command_exec(session *s, resp_out *o, const resp_arg *argv, size_t argc);

/* A parked FEED.READ BLOCK (session_conn_ops.block): reads again and,
 * when records are there (or timed_out: the deadline passed; nil when
 * still none), appends the reply to o and returns true, the connection
 * then runs its next requests; false: still nothing, it stays parked. */
bool command_feed_resume(session *s, resp_out *o, bool timed_out);

/* Number of commands in the table (COMMAND COUNT). */
size_t command_count(void);

/* ---- CLIENT LIST / KILL, run by the server on each loop (cmd_conn.c) ---- */

/* True when the connection of session s, described by cf, is selected. */
bool client_filter_match(const client_filter *f, const session *s, const conn_facts *cf);
/* Appends s's CLIENT LIST line, '\n' included, to t. */
void client_info_line(const session *s, const conn_facts *cf, resp_out *t);
/* The deferred reply to a gather: the lines of every loop (LIST), or the
 * number of connections killed (KILL). */
void client_gather_reply(resp_out *o, const client_filter *f, const char *text, size_t len,
                         uint64_t killed);

#endif /* INV_SERVER_COMMAND_H */
