/*
 * lincheck.h — a linearizability checker for histories of invcored's level
 * and hold commands (issue 17, build item 5), header-only like
 * test_util.h because every suite is built from its one .c file.
 *
 * A history is a list of operations (lc_op): who (client), what (command
 * and arguments), when (invoke and return times from the monotonic clock)
 * and the reply; an operation whose reply never came (in flight at a
 * SIGKILL) has return LC_NO_RETURN; a crash of the server is an operation
 * of its own (lc_crash: when it was certainly dead, when it listened
 * again). The checker asks whether some total order of the operations
 * that respects real time (a before b when a returned before b was
 * invoked) explains every reply by the sequential model below, where an
 * operation in flight at a crash may have taken effect (before the crash)
 * or not at all.
 *
 * The model (per level: available, reserved, revision; per client: its
 * current hold): a write's reply returns the level's new revision, which
 * must be greater than every revision ever seen on that level (new, so a
 * revision reused after a crash is caught), IFREV succeeds iff the
 * level's revision equals it, a hold reserves all its lines or none (and
 * an aborted hold changes nothing, revision included), commits move
 * reserved units out, releases give them back. A change whose reply
 * carries no revision (a hold's) leaves a revision known only to be new,
 * until a later reply reveals it. The model keeps one hold per client:
 * a client's hold operations name the hold it created last (it ends one
 * hold before it creates the next).
 *
 * The search (Wing and Gong's, with Lowe's / Porcupine's memoisation): a
 * depth-first walk that linearizes, at each step, one operation invoked
 * before the earliest return among those not yet linearized, remembering
 * every (set of linearized operations, model state) it has explored in a
 * hash set so that no configuration is searched twice. Histories are cut
 * into windows at quiescent points (no operation in flight); each window
 * starts from every model state its predecessor can end in, so a search
 * stays as small as one window.
 *
 * Crashes and durability: under --fsync always an acknowledged write
 * survives; an operation in flight may or may not. In LC_CRASH_STRICT
 * mode that is all: the state after a crash is the state before it. In
 * LC_CRASH_DIRTY_READS mode a crash may also revert to the state after
 * the last acknowledged write or after any in-flight write linearized
 * since (a prefix of the journal), as docs/PROTOCOL.md allows a read to
 * observe another connection's change before it is durable; revisions
 * seen stay seen (the high-water mark is never reverted).
 *
 * With lc_config.units_only the revisions are not checked (only
 * available, reserved and the holds): a history that fails in full but
 * passes so has only revisions wrong.
 *
 * Invariants: ops are sorted by invoke time before the search; a window
 * holds at most LC_WINDOW_MAX operations; the memo never grows past
 * memo_max entries (the check then fails as "too large", never passes).
 */
#ifndef LINCHECK_H
#define LINCHECK_H

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---- limits ------------------------------------------------------------- */

#define LC_LEVELS_MAX 4 /* hot levels one history may use */
#define LC_CLIENTS_MAX 16 /* clients (each has one hold slot in the model) */
#define LC_LINES_MAX 4 /* lines of one hold (at most one per level) */
#define LC_WINDOW_MAX 512 /* operations of one window: bounds each search */
#define LC_BITSET_WORDS (LC_WINDOW_MAX / 64)
#define LC_CANDS_MAX (LC_CLIENTS_MAX + 1) /* crash targets: last ack + one per in-flight write */
#define LC_CARRY_MAX 4096 /* model states one window may hand to the next */
#define LC_MEMO_MAX_DEFAULT (1u << 20) /* explored configurations per window */
#define LC_NO_RETURN UINT64_MAX /* return time of an operation without a reply */
#define LC_MSG_MAX 256
#define LC_CONTEXT_MAX 16 /* operations printed around a failure's first stuck one */

/* ---- operations --------------------------------------------------------- */

typedef enum {
    LC_SET, /* LEVEL.SET level qty [IFREV rev] */
    LC_ADJUST, /* LEVEL.ADJUST level delta [FLOOR min] [IFREV rev] */
    LC_GET, /* LEVEL.GET level */
    LC_HOLD_CREATE, /* HOLD.CREATE (client, hold) lines... */
    LC_HOLD_COMMIT, /* HOLD.COMMIT (client, hold): the lines it was created with */
    LC_HOLD_RELEASE, /* HOLD.RELEASE (client, hold): likewise */
    LC_CRASH /* the server died (SIGKILL) and was started again */
} lc_kind;

typedef enum {
    LC_R_NONE, /* no reply (in flight at a crash) */
    LC_R_LEVEL, /* [available, reserved, revision] */
    LC_R_OK, /* +OK */
    LC_R_CONFLICT, /* -CONFLICT revision <rev> (rev 0: a hold's CONFLICT) */
    LC_R_INSUFFICIENT, /* -INSUFFICIENT: the level's (reply_level) available */
    LC_R_NOTFOUND, /* -NOTFOUND */
    LC_R_OTHER /* anything else: never explained by the model */
} lc_reply_kind;

typedef struct {
    uint8_t kind; /* lc_kind */
    uint8_t client;
    uint8_t level; /* SET, ADJUST, GET */
    uint8_t n_lines; /* holds */
    uint8_t has_floor, has_ifrev;
    uint8_t line_level[LC_LINES_MAX];
    int64_t line_qty[LC_LINES_MAX];
    int64_t arg; /* SET: qty; ADJUST: delta */
    int64_t floor;
    uint64_t ifrev;
    uint32_t hold; /* the client's hold number */
    uint64_t invoke_ns, return_ns;
    uint64_t up_ns; /* LC_CRASH: when the new server listened */
    /* the reply */
    uint8_t reply; /* lc_reply_kind */
    uint8_t reply_level; /* LC_R_INSUFFICIENT of a hold: which line's level */
    int64_t r_available, r_reserved;
    uint64_t r_revision;
} lc_op;

/* A growable list of operations (one per client thread, merged after). */
typedef struct {
    lc_op *v;
    size_t n, cap;
} lc_history;

static inline void lc_history_free(lc_history *h)
{
    free(h->v);
    memset(h, 0, sizeof *h);
}

/* Makes room for one more element in a growable array v (cap elements
 * of size elem, n used): the array, moved when it doubled (from first),
 * or NULL when out of memory (v is then unchanged). */
static inline void *lc_room(void *v, size_t *cap, size_t n, size_t elem, size_t first)
{
    assert(n <= *cap);
    if (n < *cap)
        return v;
    size_t grown = *cap ? *cap * 2 : first;
    void *p = realloc(v, grown * elem);
    if (p)
        *cap = grown;
    return p;
}

/* Appends op; false when out of memory. */
static inline bool lc_history_push(lc_history *h, const lc_op *op)
{
    lc_op *v = lc_room(h->v, &h->cap, h->n, sizeof *v, 1024);
    if (!v)
        return false;
    h->v = v;
    h->v[h->n++] = *op;
    assert(h->n <= h->cap);
    return true;
}

/* Appends every operation of from. */
static inline bool lc_history_append(lc_history *h, const lc_history *from)
{
    for (size_t i = 0; i < from->n; i++)
        if (!lc_history_push(h, &from->v[i]))
            return false;
    return true;
}

/* A crash: the server was certainly dead at dead_ns, listened again at
 * up_ns. */
static inline bool lc_history_crash(lc_history *h, uint64_t dead_ns, uint64_t up_ns)
{
    assert(dead_ns <= up_ns);
    lc_op op;
    memset(&op, 0, sizeof op);
    op.kind = LC_CRASH;
    op.invoke_ns = op.return_ns = dead_ns;
    op.up_ns = up_ns;
    return lc_history_push(h, &op);
}

/* ---- the model ---------------------------------------------------------- */

/* A level of the model (states are hashed and compared as bytes: every
 * field is set, no padding). */
typedef struct {
    int64_t available, reserved;
    uint64_t revision; /* known revision, or (revision_known 0) an exclusive lower bound */
    uint64_t high; /* greatest revision ever seen on the level: never reverted */
    uint32_t revision_known;
    uint32_t units_only; /* 1: revisions are not checked (lc_config.units_only) */
} lc_level;

enum { LC_HOLD_NONE, LC_HOLD_HELD, LC_HOLD_COMMITTED, LC_HOLD_RELEASED };

typedef struct {
    uint32_t hold; /* the client's hold number the slot describes */
    uint32_t status; /* LC_HOLD_* */
} lc_hold_slot;

typedef struct {
    lc_level level[LC_LEVELS_MAX];
    lc_hold_slot slot[LC_CLIENTS_MAX];
} lc_state;

/* A start state: n_levels levels with their (known) fields, no holds. */
static inline void lc_state_init(lc_state *s)
{
    memset(s, 0, sizeof *s);
}
static inline void lc_state_level(lc_state *s, unsigned level, int64_t available, int64_t reserved,
                                  uint64_t revision)
{
    assert(level < LC_LEVELS_MAX);
    s->level[level] = (lc_level){available, reserved, revision, revision, 1, 0};
}

/* A reply's revision r of a level: equal to the known one, or (unknown)
 * above its lower bound, which it then becomes. */
static inline bool lc_reveal(lc_level *l, uint64_t r)
{
    if (l->units_only)
        return true;
    if (l->revision_known)
        return l->revision == r;
    if (r <= l->revision)
        return false;
    l->revision = r;
    l->revision_known = 1;
    if (r > l->high)
        l->high = r;
    return true;
}

/* A change whose reply returned revision r: r must be new. */
static inline bool lc_new_revision(lc_level *l, uint64_t r)
{
    if (l->units_only)
        return true;
    if (r <= l->high || (!l->revision_known && r <= l->revision))
        return false;
    l->revision = l->high = r;
    l->revision_known = 1;
    return true;
}

/* A change whose reply carries no revision: the new one is only known to
 * be above everything seen so far. */
static inline void lc_fresh_revision(lc_level *l)
{
    l->revision = l->high;
    l->revision_known = 0;
}

static inline bool lc_ifrev_matches(const lc_level *l, uint64_t rev)
{
    if (l->units_only)
        return true; /* a CONFLICT is then an observation that tells nothing */
    return l->revision_known ? l->revision == rev : rev > l->revision;
}

/* Would LEVEL.ADJUST refuse (deny policy: no FLOOR means floor 0 for a
 * decrement; an increment without FLOOR is never refused)? */
static inline bool lc_adjust_refused(const lc_op *op, const lc_level *l)
{
    int64_t after = l->available + op->arg;
    if (op->has_floor)
        return after < op->floor;
    return op->arg < 0 && after < 0;
}

static inline bool lc_level_reply(const lc_op *op, lc_level *l)
{
    return op->r_available == l->available && op->r_reserved == l->reserved;
}

/* LEVEL.SET and LEVEL.ADJUST: the same rules but for the new available
 * and the refusal (a SET is never refused but by IFREV). */
static inline bool lc_step_write(const lc_op *op, lc_state *s)
{
    lc_level *l = &s->level[op->level];
    bool adjust = op->kind == LC_ADJUST;
    bool ifrev_ok = !op->has_ifrev || lc_ifrev_matches(l, op->ifrev);
    bool refused = adjust && lc_adjust_refused(op, l);
    switch (op->reply) {
    case LC_R_NONE:
    case LC_R_LEVEL:
        if (!ifrev_ok || refused)
            return false;
        l->available = adjust ? l->available + op->arg : op->arg;
        if (op->reply == LC_R_NONE) {
            lc_fresh_revision(l);
            return true;
        }
        return lc_level_reply(op, l) && lc_new_revision(l, op->r_revision);
    case LC_R_INSUFFICIENT:
        /* CONFLICT is checked first: a refusal means the revision matched */
        return ifrev_ok && refused && l->available == op->r_available;
    case LC_R_CONFLICT:
        return op->has_ifrev && op->r_revision != op->ifrev && lc_reveal(l, op->r_revision);
    default:
        return false;
    }
}

static inline bool lc_step_get(const lc_op *op, lc_state *s)
{
    lc_level *l = &s->level[op->level];
    return op->reply == LC_R_LEVEL && lc_level_reply(op, l) && lc_reveal(l, op->r_revision);
}

/* Moves a hold's units: reserve (+1: available -> reserved), release (-1:
 * back), commit (0: reserved leaves). Every line's revision becomes new. */
static inline void lc_hold_move(const lc_op *op, lc_state *s, int dir)
{
    for (unsigned i = 0; i < op->n_lines; i++) {
        lc_level *l = &s->level[op->line_level[i]];
        int64_t q = op->line_qty[i];
        if (dir > 0) {
            l->available -= q;
            l->reserved += q;
        } else {
            l->reserved -= q;
            if (dir < 0)
                l->available += q;
        }
        lc_fresh_revision(l);
    }
}

static inline bool lc_step_hold_create(const lc_op *op, lc_state *s)
{
    lc_hold_slot *h = &s->slot[op->client];
    if (h->hold == op->hold && h->status != LC_HOLD_NONE)
        return false; /* a hold number is created once */
    if (op->reply == LC_R_INSUFFICIENT) {
        for (unsigned i = 0; i < op->n_lines; i++) {
            const lc_level *l = &s->level[op->line_level[i]];
            if (op->line_level[i] == op->reply_level && l->available == op->r_available &&
                l->available < op->line_qty[i])
                return true;
        }
        return false;
    }
    if (op->reply != LC_R_OK && op->reply != LC_R_NONE)
        return false;
    for (unsigned i = 0; i < op->n_lines; i++)
        if (s->level[op->line_level[i]].available < op->line_qty[i])
            return false; /* deny: never below 0 */
    lc_hold_move(op, s, +1);
    *h = (lc_hold_slot){op->hold, LC_HOLD_HELD};
    return true;
}

/* HOLD.COMMIT and HOLD.RELEASE (commit: true for a commit). */
static inline bool lc_step_hold_end(const lc_op *op, lc_state *s, bool commit)
{
    lc_hold_slot *h = &s->slot[op->client];
    uint32_t st = h->hold == op->hold ? h->status : LC_HOLD_NONE;
    uint32_t done = commit ? LC_HOLD_COMMITTED : LC_HOLD_RELEASED;
    switch (op->reply) {
    case LC_R_NONE: /* in flight: only a change is worth trying */
    case LC_R_OK:
        if (st == done && op->reply == LC_R_OK)
            return true; /* idempotent */
        if (st != LC_HOLD_HELD)
            return false;
        lc_hold_move(op, s, commit ? 0 : -1);
        h->status = done;
        return true;
    case LC_R_NOTFOUND:
        return commit ? st == LC_HOLD_NONE || st == LC_HOLD_RELEASED : st == LC_HOLD_NONE;
    case LC_R_CONFLICT:
        return !commit && st == LC_HOLD_COMMITTED;
    default:
        return false;
    }
}

/* Applies op (not a crash) to s: true if op may take effect here with its
 * reply (s is then the state after it). */
static inline bool lc_step(const lc_op *op, lc_state *s)
{
    assert(op->kind != LC_CRASH);
    assert(op->client < LC_CLIENTS_MAX);
    switch (op->kind) {
    case LC_SET:
    case LC_ADJUST:
        return lc_step_write(op, s);
    case LC_GET:
        return lc_step_get(op, s);
    case LC_HOLD_CREATE:
        return lc_step_hold_create(op, s);
    case LC_HOLD_COMMIT:
        return lc_step_hold_end(op, s, true);
    case LC_HOLD_RELEASE:
        return lc_step_hold_end(op, s, false);
    default:
        return false;
    }
}

/* An acknowledged change: its state (and all it builds on) is durable. */
static inline bool lc_is_acked_change(const lc_op *op)
{
    if (op->reply == LC_R_NONE)
        return false;
    if (op->kind == LC_SET || op->kind == LC_ADJUST)
        return op->reply == LC_R_LEVEL;
    return op->kind != LC_GET && op->reply == LC_R_OK;
}

/* An operation the model treats as an observation (it changes nothing
 * whatever its reply): dropping it from a failing window keeps it a
 * counterexample. */
static inline bool lc_is_observer(const lc_op *op)
{
    if (op->kind == LC_CRASH || op->reply == LC_R_NONE)
        return false;
    return op->kind == LC_GET || !lc_is_acked_change(op);
}

/* ---- printing ----------------------------------------------------------- */

static inline const char *lc_kind_name(uint8_t k)
{
    static const char *const names[] = {"LEVEL.SET",   "LEVEL.ADJUST", "LEVEL.GET", "HOLD.CREATE",
                                        "HOLD.COMMIT", "HOLD.RELEASE", "CRASH"};
    return k < sizeof names / sizeof names[0] ? names[k] : "?";
}

/* One operation as a line: times in microseconds from t0. */
static inline void lc_print_op(FILE *out, const lc_op *op, uint64_t t0)
{
    double inv = (double)(op->invoke_ns - t0) / 1000.0;
    if (op->kind == LC_CRASH) {
        fprintf(out, "  --   %10.1f us  CRASH (SIGKILL; restarted %.1f us later)\n", inv,
                (double)(op->up_ns - op->invoke_ns) / 1000.0);
        return;
    }
    char ret[32] = "(no reply)";
    if (op->return_ns != LC_NO_RETURN && op->reply != LC_R_NONE)
        snprintf(ret, sizeof ret, "%.1f", (double)(op->return_ns - t0) / 1000.0);
    fprintf(out, "  c%-2u %10.1f .. %-10s us  %s", op->client, inv, ret, lc_kind_name(op->kind));
    if (op->kind <= LC_GET)
        fprintf(out, " L%u", op->level);
    if (op->kind == LC_SET || op->kind == LC_ADJUST)
        fprintf(out, " %" PRId64, op->arg);
    if (op->has_floor)
        fprintf(out, " FLOOR %" PRId64, op->floor);
    if (op->has_ifrev)
        fprintf(out, " IFREV %" PRIu64, op->ifrev);
    if (op->kind >= LC_HOLD_CREATE) {
        fprintf(out, " h%u.%u", op->client, op->hold);
        for (unsigned i = 0; i < op->n_lines; i++)
            fprintf(out, " L%u:%" PRId64, op->line_level[i], op->line_qty[i]);
    }
    switch (op->reply) {
    case LC_R_NONE:
        fprintf(out, " -> (in flight at the crash)\n");
        break;
    case LC_R_LEVEL:
        fprintf(out, " -> [avail %" PRId64 ", reserved %" PRId64 ", rev %" PRIu64 "]\n",
                op->r_available, op->r_reserved, op->r_revision);
        break;
    case LC_R_OK:
        fprintf(out, " -> OK\n");
        break;
    case LC_R_CONFLICT:
        fprintf(out, " -> CONFLICT revision %" PRIu64 "\n", op->r_revision);
        break;
    case LC_R_INSUFFICIENT:
        fprintf(out, " -> INSUFFICIENT L%u available %" PRId64 "\n", op->reply_level,
                op->r_available);
        break;
    case LC_R_NOTFOUND:
        fprintf(out, " -> NOTFOUND\n");
        break;
    default:
        fprintf(out, " -> (unexpected reply)\n");
        break;
    }
}

static inline void lc_print_state(FILE *out, const lc_state *s, unsigned n_levels)
{
    for (unsigned i = 0; i < n_levels && i < LC_LEVELS_MAX; i++) {
        const lc_level *l = &s->level[i];
        fprintf(out,
                "    L%u: avail %" PRId64 ", reserved %" PRId64 ", rev %s%" PRIu64
                " (highest seen %" PRIu64 ")\n",
                i, l->available, l->reserved, l->revision_known ? "" : "> ", l->revision, l->high);
    }
    for (unsigned c = 0; c < LC_CLIENTS_MAX; c++)
        if (s->slot[c].status == LC_HOLD_HELD)
            fprintf(out, "    hold h%u.%u held\n", c, s->slot[c].hold);
}

/* ---- the search --------------------------------------------------------- */

typedef enum { LC_CRASH_STRICT, LC_CRASH_DIRTY_READS } lc_crash_mode;

typedef struct {
    unsigned n_levels; /* for printing */
    lc_crash_mode crash_mode;
    size_t memo_max; /* 0: LC_MEMO_MAX_DEFAULT */
    bool units_only; /* check available and reserved only, not revisions:
                        tells a wrong revision from units seen wrong */
    FILE *out; /* summary and counterexample; NULL: silent */
    const char *name; /* printed with the summary */
} lc_config;

typedef enum { LC_OK, LC_VIOLATION, LC_TOO_LARGE } lc_verdict;

/* The longest order a failed search found: where the explanation stops. */
typedef struct {
    size_t depth;
    uint32_t order[LC_WINDOW_MAX]; /* window indices, in linearization order */
    lc_state state; /* the model after them */
    size_t start; /* from which start state */
} lc_partial;

typedef struct {
    lc_verdict verdict;
    size_t ops, windows, window_max, crashes;
    uint64_t states; /* configurations explored, all windows */
    size_t fail_window; /* index of the first failing window */
    size_t fail_ops; /* its operations after shrinking */
    char msg[LC_MSG_MAX];
} lc_result;

/* An interning table of fixed-size records (model states, and the
 * search's configurations): each distinct record once, named by its
 * index. Records are compared as bytes; slots hold index + 1 (0: empty)
 * and the records' hashes sit beside them, so a probe touches the dense
 * slot and hash arrays before any record. */
typedef struct {
    unsigned char *v; /* n records of elem bytes */
    uint64_t *hash; /* hash of record i */
    size_t elem, n, cap, max;
    uint32_t *slot;
    size_t slot_cap;
} lc_table;

/* A configuration of the search: which operations are linearized, the
 * current state and, in dirty-reads mode, where a crash may return to. */
typedef struct {
    uint64_t placed[LC_BITSET_WORDS];
    uint32_t cur;
    uint32_t n_cands;
    uint32_t cands[LC_CANDS_MAX];
    uint32_t pad; /* zero: keys are hashed and compared as bytes */
} lc_key;

_Static_assert(sizeof(lc_key) == sizeof(uint64_t) * LC_BITSET_WORDS + 4 * (LC_CANDS_MAX + 3),
               "lc_key has no padding the compiler fills");
_Static_assert(sizeof(lc_state) ==
                   sizeof(lc_level) * LC_LEVELS_MAX + sizeof(lc_hold_slot) * LC_CLIENTS_MAX,
               "lc_state has no padding the compiler fills");

typedef struct {
    const lc_op *ops; /* the window, by invoke time */
    size_t n;
    bool required[LC_WINDOW_MAX]; /* false: in flight at a crash, may never happen */
    lc_crash_mode mode;
    lc_table states; /* lc_state records */
    lc_table memo; /* lc_key records: the configurations explored */
    uint32_t *ends; /* distinct end states */
    size_t n_ends;
    bool too_large, oom;
    size_t depth; /* the current path */
    uint32_t path[LC_WINDOW_MAX];
    lc_partial *best; /* NULL: not wanted */
    size_t start; /* the start state being searched from */
} lc_search;

static inline void lc_table_init(lc_table *t, size_t elem, size_t max)
{
    memset(t, 0, sizeof *t);
    t->elem = elem;
    t->max = max;
}

static inline void lc_table_free(lc_table *t)
{
    free(t->v);
    free(t->hash);
    free(t->slot);
    lc_table_init(t, t->elem, t->max);
}

static inline bool lc_table_grow_slots(lc_table *t)
{
    size_t cap = t->slot_cap ? t->slot_cap * 2 : 1024;
    uint32_t *slot = calloc(cap, sizeof *slot);
    if (!slot)
        return false;
    for (size_t i = 0; i < t->n; i++) {
        size_t h = t->hash[i] & (cap - 1);
        while (slot[h])
            h = (h + 1) & (cap - 1);
        slot[h] = (uint32_t)i + 1;
    }
    free(t->slot);
    t->slot = slot;
    t->slot_cap = cap;
    return true;
}

/* The index of record r (added if new: *added set), or UINT32_MAX when
 * out of memory or (adding) past t->max records. */
static inline uint32_t lc_table_intern(lc_table *t, const void *r, bool *added)
{
    *added = false;
    if ((t->n + 1) * 2 > t->slot_cap && !lc_table_grow_slots(t))
        return UINT32_MAX;
    uint64_t hash = XXH3_64bits(r, t->elem);
    size_t h = hash & (t->slot_cap - 1);
    while (t->slot[h]) {
        uint32_t i = t->slot[h] - 1;
        if (t->hash[i] == hash && memcmp(t->v + i * t->elem, r, t->elem) == 0)
            return i;
        h = (h + 1) & (t->slot_cap - 1);
    }
    if (t->n >= t->max || t->n >= UINT32_MAX - 1)
        return UINT32_MAX;
    size_t cap = t->cap;
    unsigned char *v = lc_room(t->v, &cap, t->n, t->elem, 256);
    if (!v)
        return UINT32_MAX;
    t->v = v;
    uint64_t *hashes = cap == t->cap ? t->hash : realloc(t->hash, cap * sizeof *hashes);
    if (!hashes)
        return UINT32_MAX; /* v grew: harmless, cap still says the old size */
    t->hash = hashes;
    t->cap = cap;
    memcpy(t->v + t->n * t->elem, r, t->elem);
    t->hash[t->n] = hash;
    t->slot[h] = (uint32_t)t->n + 1;
    *added = true;
    return (uint32_t)t->n++;
}

/* The state of index i. */
static inline lc_state *lc_state_at(lc_table *t, uint32_t i)
{
    assert(t->elem == sizeof(lc_state) && i < t->n);
    return (lc_state *)(void *)(t->v + (size_t)i * t->elem);
}

/* The index of state s (added if new), or UINT32_MAX when out of memory. */
static inline uint32_t lc_intern(lc_table *t, const lc_state *s)
{
    bool added;
    return lc_table_intern(t, s, &added);
}

/* Adds k: 1 if new, 0 if already there, -1 when full or out of memory. */
static inline int lc_memo_add(lc_table *m, const lc_key *k)
{
    bool added;
    uint32_t i = lc_table_intern(m, k, &added);
    return i == UINT32_MAX ? -1 : added;
}

static inline bool lc_bit(const uint64_t *set, size_t i)
{
    return (set[i / 64] >> (i % 64)) & 1;
}
static inline void lc_bit_flip(uint64_t *set, size_t i)
{
    set[i / 64] ^= 1ull << (i % 64);
}

/* The first operation not linearized yet (n when all are). */
static inline size_t lc_first_unplaced(const uint64_t *placed, size_t n)
{
    for (size_t w = 0; w < LC_BITSET_WORDS; w++)
        if (~placed[w]) {
            size_t i = w * 64 + (size_t)__builtin_ctzll(~placed[w]);
            return i < n ? i : n;
        }
    return n;
}

static inline void lc_add_end(lc_search *s, uint32_t state)
{
    for (size_t i = 0; i < s->n_ends; i++)
        if (s->ends[i] == state)
            return;
    if (s->n_ends == LC_CARRY_MAX) {
        s->too_large = true;
        return;
    }
    s->ends[s->n_ends++] = state;
}

static inline void lc_dfs(lc_search *s, lc_key *k, uint64_t max_invoke);

/* Linearizes op i from configuration k with the state after it (next) and
 * searches on; k is restored before returning. */
static inline void lc_descend(lc_search *s, lc_key *k, size_t i, const lc_state *next,
                              uint64_t max_invoke)
{
    const lc_op *op = &s->ops[i];
    uint32_t id = lc_intern(&s->states, next);
    if (id == UINT32_MAX) {
        s->oom = true;
        return;
    }
    lc_key child = *k;
    lc_bit_flip(child.placed, i);
    child.cur = id;
    if (s->mode == LC_CRASH_DIRTY_READS) {
        if (op->kind == LC_CRASH || lc_is_acked_change(op)) {
            memset(child.cands, 0, sizeof child.cands);
            child.cands[0] = id;
            child.n_cands = 1;
        } else if (op->reply == LC_R_NONE && child.n_cands < LC_CANDS_MAX) {
            child.cands[child.n_cands++] = id;
        }
    }
    assert(s->depth < LC_WINDOW_MAX);
    s->path[s->depth++] = (uint32_t)i;
    lc_dfs(s, &child, op->invoke_ns > max_invoke ? op->invoke_ns : max_invoke);
    s->depth--;
}

/* Tries to linearize op i next (every outcome of a crash). */
static inline void lc_try(lc_search *s, lc_key *k, size_t i, uint64_t max_invoke)
{
    const lc_op *op = &s->ops[i];
    const lc_state *cur = lc_state_at(&s->states, k->cur);
    if (op->kind != LC_CRASH) {
        lc_state next = *cur;
        if (lc_step(op, &next))
            lc_descend(s, k, i, &next, max_invoke);
        return;
    }
    if (s->mode == LC_CRASH_STRICT || k->n_cands == 0) {
        lc_state next = *cur;
        lc_descend(s, k, i, &next, max_invoke);
        return;
    }
    for (uint32_t c = 0; c < k->n_cands && !s->too_large && !s->oom; c++) {
        /* back to a prefix of the journal; revisions seen stay seen */
        lc_state next = *lc_state_at(&s->states, k->cands[c]);
        cur = lc_state_at(&s->states, k->cur); /* interning may have moved the array */
        for (unsigned l = 0; l < LC_LEVELS_MAX; l++)
            next.level[l].high = cur->level[l].high;
        lc_descend(s, k, i, &next, max_invoke);
    }
}

/* Explores every linearization from configuration k; records the end
 * states of the complete ones. */
static inline void lc_dfs(lc_search *s, lc_key *k, uint64_t max_invoke)
{
    assert(k->n_cands <= LC_CANDS_MAX && k->cur < s->states.n);
    assert(s->depth <= s->n);
    int added = lc_memo_add(&s->memo, k);
    if (added < 0) {
        s->too_large = true;
        return;
    }
    if (added == 0 || s->too_large || s->oom)
        return;
    if (s->best && (s->depth > s->best->depth || s->best->depth == 0)) {
        s->best->depth = s->depth;
        memcpy(s->best->order, s->path, s->depth * sizeof s->path[0]);
        s->best->state = *lc_state_at(&s->states, k->cur);
        s->best->start = s->start;
    }
    /* ops are by invoke time and one returns after it is invoked: the scan
     * for the earliest return stops at the first op invoked after it */
    size_t lo = lc_first_unplaced(k->placed, s->n);
    uint64_t min_return = UINT64_MAX;
    for (size_t i = lo; i < s->n && s->ops[i].invoke_ns <= min_return; i++)
        if (!lc_bit(k->placed, i) && s->required[i] && s->ops[i].return_ns < min_return)
            min_return = s->ops[i].return_ns;
    if (min_return == UINT64_MAX)
        lc_add_end(s, k->cur); /* every required op is linearized */
    for (size_t i = lo; i < s->n && s->ops[i].invoke_ns <= min_return; i++) {
        if (lc_bit(k->placed, i))
            continue;
        /* an optional operation can no longer go after one invoked after
         * its (the crash's) time */
        if (!s->required[i] && s->ops[i].return_ns < max_invoke)
            continue;
        lc_try(s, k, i, max_invoke);
        if (s->too_large || s->oom)
            return;
    }
}

/* Searches one window from every start state; the end states replace
 * starts (n_starts updated). Returns LC_OK, LC_VIOLATION (no end state)
 * or LC_TOO_LARGE. states counts the configurations explored. */
static inline lc_verdict lc_search_window(const lc_op *ops, size_t n, lc_state *starts,
                                          size_t *n_starts, lc_crash_mode mode, size_t memo_max,
                                          uint64_t *states, lc_partial *best)
{
    assert(n <= LC_WINDOW_MAX);
    assert(*n_starts >= 1 && *n_starts <= LC_CARRY_MAX);
    lc_search *s = calloc(1, sizeof *s);
    uint32_t *ends = malloc(LC_CARRY_MAX * sizeof *ends);
    if (!s || !ends) {
        free(s);
        free(ends);
        return LC_TOO_LARGE;
    }
    s->ops = ops;
    s->n = n;
    s->mode = mode;
    s->ends = ends;
    lc_table_init(&s->states, sizeof(lc_state), UINT32_MAX - 1);
    lc_table_init(&s->memo, sizeof(lc_key), memo_max);
    s->best = best;
    if (best)
        best->depth = 0;
    for (size_t i = 0; i < n; i++)
        s->required[i] = ops[i].kind == LC_CRASH || ops[i].reply != LC_R_NONE;
    for (size_t j = 0; j < *n_starts && !s->too_large && !s->oom; j++) {
        s->start = j;
        lc_key k;
        memset(&k, 0, sizeof k);
        k.cur = lc_intern(&s->states, &starts[j]);
        if (k.cur == UINT32_MAX) {
            s->oom = true;
            break;
        }
        if (mode == LC_CRASH_DIRTY_READS) {
            k.cands[0] = k.cur;
            k.n_cands = 1;
        }
        lc_dfs(s, &k, 0);
    }
    *states += s->memo.n;
    lc_verdict v = s->too_large || s->oom ? LC_TOO_LARGE : s->n_ends ? LC_OK : LC_VIOLATION;
    if (v == LC_OK) {
        for (size_t j = 0; j < s->n_ends; j++)
            starts[j] = *lc_state_at(&s->states, s->ends[j]);
        *n_starts = s->n_ends;
    }
    lc_table_free(&s->states);
    lc_table_free(&s->memo);
    free(ends);
    free(s);
    return v;
}

/* ---- preparing a history ------------------------------------------------ */

static inline int lc_by_invoke(const void *a, const void *b)
{
    const lc_op *x = a, *y = b;
    if (x->invoke_ns != y->invoke_ns)
        return x->invoke_ns < y->invoke_ns ? -1 : 1;
    return (x->kind == LC_CRASH) - (y->kind == LC_CRASH);
}

/* Sorts by invoke time and ties each reply-less operation to the crash it
 * was in flight at: it ends at the crash (may have happened before it) or
 * is dropped (a read, which tells nothing, or a request sent while the
 * server was down, which never arrived). A reply that arrived after the
 * server was certainly dead is counted at that time; the crash itself
 * comes just after. Returns the new count (linear: one pass, a cursor on
 * the next crash). */
static inline size_t lc_prepare(lc_op *ops, size_t n)
{
    qsort(ops, n, sizeof *ops, lc_by_invoke);
    size_t out = 0, next = 0; /* next: the first crash at or after i (unmodified: out <= i) */
    uint64_t down_from = LC_NO_RETURN, down_to = 0; /* the last crash seen */
    for (size_t i = 0; i < n; i++) {
        if (next < i)
            next = i;
        while (next < n && ops[next].kind != LC_CRASH)
            next++;
        lc_op op = ops[i];
        if (op.kind == LC_CRASH) {
            down_from = op.invoke_ns;
            down_to = op.up_ns;
            op.invoke_ns = op.return_ns = op.invoke_ns + 1;
            ops[out++] = op;
            continue;
        }
        uint64_t crash_ns = next < n ? ops[next].invoke_ns : LC_NO_RETURN;
        if (op.reply == LC_R_NONE) {
            bool sent_while_down = op.invoke_ns >= down_from && op.invoke_ns <= down_to;
            if (op.kind == LC_GET || sent_while_down)
                continue;
            op.return_ns = crash_ns;
        } else if (op.return_ns > crash_ns) {
            op.return_ns = crash_ns;
        }
        assert(op.return_ns >= op.invoke_ns);
        ops[out++] = op;
    }
    assert(out <= n);
    return out;
}

/* The end (exclusive) of the window starting at from: the first quiescent
 * point (no operation in flight) not before a crash. */
static inline size_t lc_window_end(const lc_op *ops, size_t n, size_t from)
{
    uint64_t max_return = 0;
    for (size_t i = from; i < n; i++) {
        if (i > from && max_return < ops[i].invoke_ns && ops[i].kind != LC_CRASH)
            return i;
        if (ops[i].return_ns > max_return)
            max_return = ops[i].return_ns;
    }
    return n;
}

/* ---- shrinking and reporting a failure ----------------------------------- */

/* True if the window fails from the given starts (each tried). */
static inline bool lc_fails(const lc_op *ops, size_t n, const lc_state *starts, size_t n_starts,
                            lc_crash_mode mode, size_t memo_max)
{
    lc_state *copy = malloc(LC_CARRY_MAX * sizeof *copy);
    if (!copy)
        return false;
    memcpy(copy, starts, n_starts * sizeof *copy);
    uint64_t states = 0;
    size_t k = n_starts;
    lc_verdict v = lc_search_window(ops, n, copy, &k, mode, memo_max, &states, NULL);
    free(copy);
    return v == LC_VIOLATION;
}

/* Drops observers (reads and refusals, but not aborted holds: they change
 * nothing) one by one while the window still fails: what is left is
 * still a counterexample, and shorter to read. Returns the new count. */
static inline size_t lc_shrink(lc_op *ops, size_t n, const lc_state *starts, size_t n_starts,
                               lc_crash_mode mode, size_t memo_max)
{
    lc_op *trial = malloc((n ? n : 1) * sizeof *trial);
    if (!trial)
        return n;
    for (size_t i = n; i-- > 0;) {
        /* aborted holds stay: they are few, and often the reason */
        if (!lc_is_observer(&ops[i]) || ops[i].kind == LC_HOLD_CREATE)
            continue;
        size_t m = 0;
        for (size_t j = 0; j < n; j++)
            if (j != i)
                trial[m++] = ops[j];
        if (lc_fails(trial, m, starts, n_starts, mode, memo_max)) {
            memcpy(ops, trial, m * sizeof *ops);
            n = m;
        }
    }
    free(trial);
    return n;
}

/* The window seen through some levels only (mask: bit l for level l):
 * operations on other levels dropped, holds cut down to their lines on
 * these (dropped when none is left, or when an INSUFFICIENT names a line
 * cut off). A correct history stays linearizable under this projection
 * (levels evolve apart but for holds, whose lines keep their all or
 * nothing), so a projection that fails is a counterexample too. Returns
 * the count written to out. */
static inline size_t lc_project(const lc_op *ops, size_t n, unsigned mask, lc_op *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        lc_op op = ops[i];
        if (op.kind <= LC_GET && !(mask >> op.level & 1))
            continue;
        if (op.kind >= LC_HOLD_CREATE && op.kind <= LC_HOLD_RELEASE) {
            unsigned k = 0;
            for (unsigned j = 0; j < op.n_lines; j++)
                if (mask >> op.line_level[j] & 1) {
                    op.line_level[k] = op.line_level[j];
                    op.line_qty[k++] = op.line_qty[j];
                }
            op.n_lines = (uint8_t)k;
            if (k == 0 || (op.reply == LC_R_INSUFFICIENT && !(mask >> op.reply_level & 1)))
                continue;
        }
        out[m++] = op;
    }
    assert(m <= n);
    return m;
}

/* The smallest projection onto fewer levels that still fails (written
 * back into ops), fewest levels first. Returns the new count. */
static inline size_t lc_shrink_levels(lc_op *ops, size_t n, unsigned n_levels,
                                      const lc_state *starts, size_t n_starts, lc_crash_mode mode,
                                      size_t memo_max)
{
    lc_op *trial = malloc((n ? n : 1) * sizeof *trial);
    if (!trial || n_levels > LC_LEVELS_MAX)
        goto out;
    for (unsigned size = 1; size < n_levels; size++)
        for (unsigned mask = 1; mask < 1u << n_levels; mask++) {
            if ((unsigned)__builtin_popcount(mask) != size)
                continue;
            size_t m = lc_project(ops, n, mask, trial);
            if (m < n && lc_fails(trial, m, starts, n_starts, mode, memo_max)) {
                memcpy(ops, trial, m * sizeof *ops);
                n = m;
                goto out;
            }
        }
out:
    free(trial);
    return n;
}

/* Prints the operations of the full window that overlap stuck in time
 * but were shrunk away (not needed for the failure, often its cause: an
 * aborted hold that failed on a level projected out). */
static inline void lc_print_context(FILE *out, const lc_op *win, size_t n, const lc_op *kept,
                                    size_t n_kept, const lc_op *stuck)
{
    assert(stuck->invoke_ns <= stuck->return_ns);
    unsigned printed = 0;
    for (size_t i = 0; i < n && printed < LC_CONTEXT_MAX; i++) {
        const lc_op *op = &win[i];
        if (op->invoke_ns > stuck->return_ns || op->return_ns < stuck->invoke_ns)
            continue;
        bool was_kept = false;
        for (size_t j = 0; j < n_kept && !was_kept; j++)
            was_kept = kept[j].invoke_ns == op->invoke_ns && kept[j].client == op->client;
        if (was_kept)
            continue;
        if (printed++ == 0)
            fprintf(out, "  in flight with the first one none could follow (left out above):\n");
        fprintf(out, "       ");
        lc_print_op(out, op, win[0].invoke_ns);
    }
}

/* Prints a failing window: the operations (shrunk), each with its place
 * in the longest order the search found ("#k") or "--" where none could
 * follow, and the model after that order. */
static inline void lc_report_failure(const lc_config *cfg, lc_result *res, const lc_op *win,
                                     size_t n, const lc_state *starts, size_t n_starts,
                                     size_t memo_max)
{
    lc_op *small = malloc((n ? n : 1) * sizeof *small);
    lc_state *copy = malloc(LC_CARRY_MAX * sizeof *copy);
    lc_partial *best = calloc(1, sizeof *best);
    if (!small || !copy || !best)
        goto out;
    memcpy(small, win, n * sizeof *small);
    size_t m =
        lc_shrink_levels(small, n, cfg->n_levels, starts, n_starts, cfg->crash_mode, memo_max);
    m = lc_shrink(small, m, starts, n_starts, cfg->crash_mode, memo_max);
    res->fail_ops = m;
    if (!cfg->out)
        goto out;
    memcpy(copy, starts, n_starts * sizeof *copy);
    size_t k = n_starts;
    uint64_t states = 0;
    lc_search_window(small, m, copy, &k, cfg->crash_mode, memo_max, &states, best);
    fprintf(cfg->out,
            "lincheck %s: NOT LINEARIZABLE: window %zu (%zu operations, %zu after dropping "
            "levels and reads that are not needed) from %zu possible start state(s); the one that "
            "goes furthest:\n",
            cfg->name ? cfg->name : "", res->fail_window, n, m, n_starts);
    lc_print_state(cfg->out, &starts[best->start], cfg->n_levels);
    fprintf(cfg->out,
            "  the longest order found explains %zu of them (#k: its place; --: "
            "none could follow it):\n",
            best->depth);
    const lc_op *stuck = NULL; /* the unexplained one that returned first */
    for (size_t i = 0; i < m; i++) {
        char tag[24] = "--";
        for (size_t j = 0; j < best->depth; j++)
            if (best->order[j] == i)
                snprintf(tag, sizeof tag, "#%zu", j + 1);
        if (tag[0] == '-' && (!stuck || small[i].return_ns < stuck->return_ns))
            stuck = &small[i];
        fprintf(cfg->out, "  %5s", tag);
        lc_print_op(cfg->out, &small[i], win[0].invoke_ns);
    }
    fprintf(cfg->out, "  the model after that order:\n");
    lc_print_state(cfg->out, &best->state, cfg->n_levels);
    if (stuck)
        lc_print_context(cfg->out, win, n, small, m, stuck);
out:
    free(best);
    free(copy);
    free(small);
}

/* Checks a history (sorted and prepared in place: ops is modified) from
 * the start state init. Fills res and prints a summary (and, on a
 * violation, the failing window) to cfg->out. */
static inline lc_verdict lc_check(lc_op *ops, size_t n, const lc_state *init, const lc_config *cfg,
                                  lc_result *res)
{
    memset(res, 0, sizeof *res);
    size_t memo_max = cfg->memo_max ? cfg->memo_max : LC_MEMO_MAX_DEFAULT;
    n = lc_prepare(ops, n);
    res->ops = n;
    for (size_t i = 0; i < n; i++)
        res->crashes += ops[i].kind == LC_CRASH;
    lc_state *starts = malloc(LC_CARRY_MAX * sizeof *starts);
    if (!starts) {
        res->verdict = LC_TOO_LARGE;
        snprintf(res->msg, sizeof res->msg, "out of memory");
        return res->verdict;
    }
    starts[0] = *init;
    for (unsigned l = 0; l < LC_LEVELS_MAX; l++)
        starts[0].level[l].units_only = cfg->units_only;
    size_t n_starts = 1;
    res->verdict = LC_OK;
    for (size_t from = 0; from < n && res->verdict == LC_OK;) {
        size_t to = lc_window_end(ops, n, from);
        size_t len = to - from;
        res->windows++;
        if (len > res->window_max)
            res->window_max = len;
        if (len > LC_WINDOW_MAX) {
            res->verdict = LC_TOO_LARGE;
            snprintf(res->msg, sizeof res->msg,
                     "window %zu: %zu operations without a quiescent "
                     "point (limit %d)",
                     res->windows - 1, len, LC_WINDOW_MAX);
            break;
        }
        lc_state *before = malloc(n_starts * sizeof *before);
        size_t n_before = n_starts;
        if (before)
            memcpy(before, starts, n_starts * sizeof *before);
        lc_verdict v = lc_search_window(&ops[from], len, starts, &n_starts, cfg->crash_mode,
                                        memo_max, &res->states, NULL);
        if (v == LC_VIOLATION) {
            res->verdict = LC_VIOLATION;
            res->fail_window = res->windows - 1;
            snprintf(res->msg, sizeof res->msg, "window %zu (%zu operations) is not linearizable",
                     res->fail_window, len);
            if (before)
                lc_report_failure(cfg, res, &ops[from], len, before, n_before, memo_max);
        } else if (v == LC_TOO_LARGE) {
            res->verdict = LC_TOO_LARGE;
            snprintf(res->msg, sizeof res->msg,
                     "window %zu (%zu operations): search over %zu configurations or %d end "
                     "states",
                     res->windows - 1, len, memo_max, LC_CARRY_MAX);
        }
        free(before);
        from = to;
    }
    free(starts);
    if (cfg->out)
        fprintf(cfg->out,
                "lincheck %s: %zu operations, %zu crashes, %zu windows (largest %zu), %" PRIu64
                " search states: %s%s%s\n",
                cfg->name ? cfg->name : "", res->ops, res->crashes, res->windows, res->window_max,
                res->states,
                res->verdict == LC_OK          ? "linearizable"
                : res->verdict == LC_VIOLATION ? "NOT linearizable"
                                               : "not decided",
                res->msg[0] ? ": " : "", res->msg);
    return res->verdict;
}

#endif /* LINCHECK_H */
