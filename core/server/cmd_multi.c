/*
 * cmd_multi.c — MULTI / EXEC / DISCARD / WATCH / UNWATCH: transactions that
 * apply all or nothing.
 *
 * After MULTI, command_exec hands every command but the CMD_NOQUEUE ones
 * (MULTI EXEC DISCARD WATCH QUIT) to multi_queue. A batch line (CMD_BATCH:
 * LEVEL.SET, LEVEL.ADJUST, LEVEL.GET, HOLD.CREATE, HOLD.COMMIT,
 * HOLD.RELEASE) is parsed in full by its command's own parser; a read
 * (CMD_READONLY) is kept as its arguments; both answer +QUEUED. Anything
 * else, or a command that fails its checks, gets its error and aborts the
 * transaction: EXEC then answers EXECABORT and runs nothing. EXEC gives
 * every batch line, in order, to one inv_batch() call: all of them apply
 * or none does, and a failure is one error naming the line. Then the reads
 * run, in queue order, so they see the whole transaction applied. The
 * reply is an array with each command's own reply, in queue order.
 *
 * Invariants:
 *  - multi_open false => nothing queued, nothing allocated, not aborted.
 *  - multi_aborted => nothing queued (the queue is freed when it aborts).
 *  - A queued command is a copy (the parser's buffer is reused), in chunks
 *    that never move, so the pointers inside a record stay valid until the
 *    queue is freed. At most MULTI_COMMANDS_MAX commands and
 *    --max-query-buffer bytes are queued; no allocation per command: the
 *    chunks double from MULTI_CHUNK_MIN (one chunk holds a typical
 *    transaction).
 *  - Every way out of a transaction frees the queue through multi_discard:
 *    EXEC, DISCARD, RESET, a closed connection, the end of a fuzz input.
 */
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "server/cmd_internal.h"

/* Every queued command may be a batch line, and a batch holds at most
 * INV_BATCH_LINES_MAX: one bound for both keeps EXEC's arrays (in
 * cmd_scratch) fixed. */
#define MULTI_COMMANDS_MAX INV_BATCH_LINES_MAX
#define MULTI_CHUNK_MIN 4096u /* bytes of the first chunk */
#define MULTI_NAME_MAX 32u /* a command name in an error, NUL included */
#define MULTI_ERROR_MAX 160u /* a failed line's message */

_Static_assert(MULTI_COMMANDS_MAX <= INV_BATCH_LINES_MAX,
               "EXEC's batch array is sized INV_BATCH_LINES_MAX");

typedef struct multi_rec {
    struct multi_rec *next;
    const cmd_def *cmd;
    bool batch; /* a batch line (line), else a read (argv) */
    inv_batch_line line; /* hold_id, hold_lines, buyer, order_ref point into this record */
    size_t argc;
    resp_arg argv[]; /* reads: argc arguments, then their bytes */
} multi_rec;

typedef struct multi_chunk {
    struct multi_chunk *next;
    size_t cap, used; /* bytes of data */
    max_align_t data[];
} multi_chunk;

/* ---- the queue ------------------------------------------------------------ */

static void queue_free(session *s)
{
    assert(s != NULL && s->multi_count <= MULTI_COMMANDS_MAX);
    multi_chunk *c = s->multi_chunks;
    while (c != NULL) {
        multi_chunk *next = c->next;
        free(c);
        c = next;
    }
    s->multi_chunks = NULL;
    s->multi_head = s->multi_tail = NULL;
    s->multi_count = 0;
    s->multi_bytes = 0;
    s->multi_id_len = 0;
    assert(s->multi_head == NULL && s->multi_chunks == NULL);
}

/* The transaction stays open but EXEC will refuse it: nothing more is kept. */
static void multi_abort(session *s)
{
    assert(s->multi_open); /* only an open transaction aborts */
    queue_free(s);
    s->multi_aborted = true;
    assert(s->multi_count == 0 && s->multi_bytes == 0);
}

void multi_discard(session *s)
{
    assert(s != NULL);
    queue_free(s);
    s->multi_open = false;
    s->multi_aborted = false;
    assert(s->multi_count == 0 && s->multi_head == NULL && s->multi_tail == NULL);
}

void multi_flag_error(session *s)
{
    assert(s != NULL);
    if (s->multi_open)
        multi_abort(s);
    assert(!s->multi_open || s->multi_aborted);
}

/* size bytes, aligned, from the newest chunk or a new one (NULL: no memory).
 * A new chunk doubles the last one, but the chunks together stay within the
 * byte limit plus one record. */
static void *queue_alloc(session *s, size_t size)
{
    const size_t align = sizeof(max_align_t);
    assert(s->multi_open && !s->multi_aborted && size > 0);
    size = (size + align - 1) / align * align;
    multi_chunk *c = s->multi_chunks;
    if (c == NULL || c->cap - c->used < size) {
        size_t limit = s->ctx->cfg->max_query, held = 0;
        for (multi_chunk *k = c; k != NULL; k = k->next)
            held += k->cap;
        size_t cap = c != NULL ? 2 * c->cap : MULTI_CHUNK_MIN;
        if (cap > limit - (held < limit ? held : limit))
            cap = limit - (held < limit ? held : limit);
        if (cap < size)
            cap = size;
        c = inv_malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = s->multi_chunks;
        s->multi_chunks = c;
    }
    c->used += size;
    assert(c->used <= c->cap); /* the record fits the chunk it came from */
    return (char *)c->data + (c->used - size);
}

/* inv_batch takes a hold in one line of a batch only: refuse a second line
 * on the same hold now rather than fail at EXEC. O(queued commands). */
static int hold_once_or_reply(const session *s, resp_out *o, const inv_batch_line *l)
{
    size_t pos = 0;
    assert(session_ok(s) && reply_buf_ok(o) && l != NULL);
    if (l->hold_id == NULL)
        return 0;
    for (const multi_rec *r = s->multi_head; r != NULL; r = r->next) {
        pos++;
        if (r->batch && r->line.hold_id != NULL && r->line.hold_id_len == l->hold_id_len &&
            memcmp(r->line.hold_id, l->hold_id, l->hold_id_len) == 0) {
            resp_w_errorf(o,
                          "INVALID this hold is already line %zu of the "
                          "transaction (one line per hold in a MULTI)",
                          pos);
            return -1;
        }
    }
    assert(pos == s->multi_count); /* the list and its count agree */
    return 0;
}

static size_t batch_rec_size(const inv_batch_line *l)
{
    assert(l != NULL && l->n_hold_lines <= INV_HOLD_LINES_MAX);
    assert(l->hold_id_len <= INV_HOLD_ID_MAX && l->ref_len <= INV_REF_MAX);
    return sizeof(multi_rec) + l->n_hold_lines * sizeof(inv_hold_line) + l->hold_id_len +
           l->buyer_len + l->order_ref_len + l->ref_len;
}

/* Copies n bytes of src to *p (advanced) and returns where they went. */
static const char *rec_copy(char **p, const char *src, size_t n)
{
    const char *at = *p;
    assert(at != NULL && src != NULL && n > 0);
    memcpy(*p, src, n);
    *p += n;
    return at;
}

static size_t read_rec_size(const resp_arg *argv, size_t argc)
{
    assert(argv != NULL && argc >= 1);
    size_t size = sizeof(multi_rec) + argc * sizeof(resp_arg);
    for (size_t i = 0; i < argc; i++)
        size += argv[i].len;
    assert(size > sizeof(multi_rec));
    return size;
}

/* Copies the parsed line and what it points to into r. */
static void batch_rec_fill(multi_rec *r, const inv_batch_line *l)
{
    char *p = (char *)r->argv;
    assert(r != NULL && l != NULL);
    r->batch = true;
    r->line = *l;
    r->argc = 0;
    if (l->n_hold_lines > 0) {
        memcpy(p, l->hold_lines, l->n_hold_lines * sizeof(inv_hold_line));
        r->line.hold_lines = (const inv_hold_line *)(void *)p;
        p += l->n_hold_lines * sizeof(inv_hold_line);
    }
    if (l->hold_id_len > 0)
        r->line.hold_id = rec_copy(&p, l->hold_id, l->hold_id_len);
    if (l->buyer_len > 0)
        r->line.buyer = rec_copy(&p, l->buyer, l->buyer_len);
    if (l->order_ref_len > 0)
        r->line.order_ref = rec_copy(&p, l->order_ref, l->order_ref_len);
    if (l->ref_len > 0)
        r->line.ref = rec_copy(&p, l->ref, l->ref_len);
    /* wrote within what batch_rec_size counted */
    assert((size_t)(p - (char *)r) <= batch_rec_size(l));
}

static void read_rec_fill(multi_rec *r, const resp_arg *argv, size_t argc)
{
    char *p = (char *)(r->argv + argc);
    assert(r != NULL && argv != NULL && argc >= 1);
    r->batch = false;
    memset(&r->line, 0, sizeof r->line);
    r->argc = argc;
    for (size_t i = 0; i < argc; i++) {
        if (argv[i].len > 0)
            memcpy(p, argv[i].ptr, argv[i].len);
        r->argv[i].ptr = p;
        r->argv[i].len = argv[i].len;
        p += argv[i].len;
    }
    /* wrote within what read_rec_size counted */
    assert((size_t)(p - (char *)r) <= read_rec_size(argv, argc));
}

static void refuse(session *s, resp_out *o, const cmd_def *c)
{
    char name[MULTI_NAME_MAX];
    assert(s->multi_open && reply_buf_ok(o) && c != NULL);
    resp_w_errorf(o,
                  "ERR Command not allowed inside a transaction: %s "
                  "(MULTI takes LEVEL.SET, LEVEL.ADJUST, LEVEL.GET, "
                  "HOLD.CREATE, HOLD.COMMIT, HOLD.RELEASE, HOLD.EXTEND and reads)",
                  command_upper(c, name, sizeof name));
    multi_abort(s);
}

/* A queued line's REASON and REF go with it; an ID names the whole
 * transaction (one at most). */
static int multi_meta_or_reply(session *s, resp_out *o, inv_batch_line *line)
{
    const request_meta *m = &s->meta;
    assert(s->multi_open && reply_buf_ok(o) && line != NULL);
    assert(m->id_len <= INV_REQUEST_ID_MAX); /* peel_meta_or_reply checked it */
    line->reason = m->reason;
    line->ref = m->ref, line->ref_len = m->ref_len;
    if (!m->id)
        return 0;
    if (s->multi_id_len) {
        resp_w_error(o, "INVALID", "a transaction takes one ID (it names the whole EXEC)");
        return -1;
    }
    memcpy(s->multi_id, m->id, m->id_len);
    s->multi_id_len = m->id_len;
    return 0;
}

void multi_queue(session *s, resp_out *o, const cmd_def *c, multi_kind kind, const resp_arg *argv,
                 size_t argc)
{
    assert(session_ok(s) && s->multi_open && reply_buf_ok(o));
    assert(c != NULL && argv != NULL && argc >= c->min_args); /* arity checked */
    if (kind == MULTI_REFUSED) {
        refuse(s, o, c);
        return;
    }
    inv_batch_line line;
    if (kind == MULTI_BATCH &&
        (batch_line_parse_or_reply(o, argv, argc, &line, s->scratch->lines) != 0 ||
         hold_once_or_reply(s, o, &line) != 0 || multi_meta_or_reply(s, o, &line) != 0)) {
        multi_abort(s);
        return;
    }
    if (s->multi_aborted) { /* checked as Redis does; EXEC refuses anyway */
        resp_w_simple(o, "QUEUED");
        return;
    }
    if (s->multi_count >= MULTI_COMMANDS_MAX) {
        resp_w_errorf(o, "LIMIT a transaction holds at most %u commands",
                      (unsigned)MULTI_COMMANDS_MAX);
        multi_abort(s);
        return;
    }
    size_t size = kind == MULTI_BATCH ? batch_rec_size(&line) : read_rec_size(argv, argc);
    if (size > s->ctx->cfg->max_query - s->multi_bytes) {
        resp_w_errorf(o,
                      "LIMIT a transaction holds at most %zu bytes "
                      "(--max-query-buffer)",
                      s->ctx->cfg->max_query);
        multi_abort(s);
        return;
    }
    multi_rec *r = queue_alloc(s, size);
    if (r == NULL) {
        reply_engine_error(o, INV_ENOMEM);
        multi_abort(s);
        return;
    }
    r->next = NULL;
    r->cmd = c;
    if (kind == MULTI_BATCH)
        batch_rec_fill(r, &line);
    else
        read_rec_fill(r, argv, argc);
    if (s->multi_tail != NULL)
        s->multi_tail->next = r;
    else
        s->multi_head = r;
    s->multi_tail = r;
    s->multi_count++;
    s->multi_bytes += size;
    assert(s->multi_count <= MULTI_COMMANDS_MAX && s->multi_bytes <= s->ctx->cfg->max_query);
    resp_w_simple(o, "QUEUED");
}

/* ---- EXEC ------------------------------------------------------------------ */

/* One error for the whole EXEC: the failing line, as its command alone
 * would word it, and where it stands in the transaction (1-based). */
static void reply_exec_failed(session *s, resp_out *o, int rc, size_t failed, size_t nbatch)
{
    const inv_batch_result *res = s->scratch->results;
    const multi_rec *r = NULL;
    size_t pos = 0, k = 0;
    assert(session_ok(s) && reply_buf_ok(o));
    assert(rc != INV_OK && nbatch <= MULTI_COMMANDS_MAX);
    if (failed < nbatch && res[failed].rc != INV_OK)
        for (r = s->multi_head; r != NULL; r = r->next) {
            pos++;
            if (r->batch && k++ == failed)
                break;
        }
    if (r == NULL) { /* no line failed: the journal (IO), as a write alone */
        resp_w_errorf(o, "%s EXEC failed: %s", inv_errcode(rc), inv_strerror(rc));
        return;
    }
    char msg[MULTI_ERROR_MAX], name[MULTI_NAME_MAX];
    assert(r->batch && pos >= 1 && pos <= s->multi_count);
    const char *code = batch_line_error(s, &r->line, &res[failed], msg, sizeof msg);
    resp_w_errorf(o, "%s EXEC line %zu (%s): %s; nothing was applied", code, pos,
                  command_upper(r->cmd, name, sizeof name), msg);
}

/* Applies the batch lines in one inv_batch, then answers every command in
 * queue order, running the reads in between. */
static void exec_queue(session *s, resp_out *o)
{
    inv_batch_line *lines = s->scratch->batch;
    inv_batch_result *res = s->scratch->results;
    size_t nbatch = 0, failed = SIZE_MAX;
    uint64_t t0 = 0, t1 = 0;
    int rc = INV_OK;
    assert(session_ok(s) && s->multi_open && !s->multi_aborted);
    assert(s->e != NULL); /* EXEC is not CMD_NOTENANT: the gate resolved it */

    for (const multi_rec *r = s->multi_head; r != NULL; r = r->next)
        if (r->batch)
            lines[nbatch++] = r->line; /* nbatch <= MULTI_COMMANDS_MAX */
    assert(nbatch <= s->multi_count && nbatch <= MULTI_COMMANDS_MAX);
    if (nbatch > 0) {
        t0 = clock_mono_ns();
        memset(res, 0, nbatch * sizeof *res);
        inv_batch_opts opts = {s->multi_id_len ? s->multi_id : NULL, s->multi_id_len};
        rc = inv_batch_ex(s->e, lines, nbatch, &opts, res, &failed);
        t1 = clock_mono_ns();
    }
    if (rc == INV_ECONFLICT && failed == SIZE_MAX && s->multi_id_len) {
        reply_id_conflict(o, s->multi_id, s->multi_id_len);
        return;
    }
    if (rc != INV_OK) {
        reply_exec_failed(s, o, rc, failed, nbatch);
        return;
    }
    resp_w_array(o, s->multi_count);
    nbatch = 0;
    size_t answered = 0;
    for (const multi_rec *r = s->multi_head; r != NULL; r = r->next, answered++) {
        if (r->batch) {
            /* a line's latency is its whole batch's */
            command_record(s, r->cmd, NULL, 0, t0, t1, res[nbatch].rc != INV_OK);
            reply_batch_line(s, o, &r->line, &res[nbatch++]);
        } else {
            command_run(s, o, r->cmd, r->argv, r->argc);
        }
    }
    assert(answered == s->multi_count); /* the array's length was right */
}

/* ---- the commands ------------------------------------------------------------ */

void cmd_multi(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 1));
    if (s->multi_open) { /* as Redis: an error, the transaction stays open */
        resp_w_error(o, "ERR", "MULTI calls can not be nested");
        return;
    }
    s->multi_open = true;
    assert(s->multi_count == 0 && !s->multi_aborted); /* was closed: nothing kept */
    resp_w_ok(o);
}

void cmd_exec(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 1));
    if (!s->multi_open) {
        resp_w_error(o, "ERR", "EXEC without MULTI");
        return;
    }
    if (s->multi_aborted)
        resp_w_error(o, "EXECABORT", "Transaction discarded because of previous errors.");
    else
        exec_queue(s, o);
    multi_discard(s);
    assert(!s->multi_open && s->multi_chunks == NULL);
}

void cmd_discard(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 1));
    if (!s->multi_open) {
        resp_w_error(o, "ERR", "DISCARD without MULTI");
        return;
    }
    multi_discard(s);
    assert(!s->multi_open);
    resp_w_ok(o);
}

/* invcore has no keys to watch: a level's revision plays that part. */
void cmd_watch(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 0));
    if (s->multi_open)
        resp_w_error(o, "ERR", "WATCH inside MULTI is not allowed");
    else
        resp_w_error(o, "ERR",
                     "WATCH is not supported: read the level's revision and "
                     "use IFREV rev on LEVEL.SET / LEVEL.ADJUST inside MULTI");
}

/* Clients send it to reset a connection: nothing is watched, nothing to do. */
void cmd_unwatch(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 1));
    resp_w_ok(o);
}

/* ---- the commands of this file (rows: cmd_internal.h) ---------------------- */

const cmd_def cmd_multi_rows[] = {
    {"multi", 1, 1, 0, 0, CMD_FAST | CMD_NOQUEUE | CMD_NOTENANT, cmd_multi, "MULTI"},
    {"exec", 1, 1, 0, 0, CMD_WRITE | CMD_NOQUEUE, cmd_exec, "EXEC"},
    {"discard", 1, 1, 0, 0, CMD_FAST | CMD_NOQUEUE | CMD_NOTENANT, cmd_discard, "DISCARD"},
    {"watch", 2, 0, 0, 0, CMD_FAST | CMD_NOQUEUE | CMD_NOTENANT, cmd_watch,
     "WATCH key [key ...] (refused: use IFREV)"},
    {"unwatch", 1, 1, 0, 0, CMD_FAST | CMD_READONLY | CMD_NOTENANT, cmd_unwatch, "UNWATCH"},
};
const size_t cmd_multi_rows_n = sizeof cmd_multi_rows / sizeof cmd_multi_rows[0];
