/*
 * invcore_feed.c — build/invcore-feed: prints change-feed records as JSON
 * lines (one record per line, feed_json.h's schema), for audits and load
 * tests' post-run checks. Two sources, the same output:
 *
 *   invcore-feed --dir DATA_DIR [--from POS] [--item I] [--loc L] [--count N]
 *     reads a data dir that no running engine owns (inv_feed_open_dir):
 *     every whole record on disk, then exits.
 *   invcore-feed --host H --port P [--auth TOKEN] [--from POS|$] [--item I]
 *                [--loc L] [--count N] [--follow]
 *     reads a live invcored with FEED.READ (docs/PROTOCOL.md "Change feed"),
 *     page by page until caught up; --follow waits for new records (BLOCK)
 *     until interrupted.
 *
 * --item / --loc keep the records with a change of that item / location,
 * and of each only those changes (as FEED.READ's filters). --count stops
 * after N records. Exit codes: 0 done; 1 an error (I/O, a corrupt record, a
 * server error or lost connection); 2 bad arguments (usage printed); 3 the
 * records after --from are past retention (history starts later).
 *
 * Every reply from the server is checked for its shape before use: a
 * malformed one is an error (exit 1), never a crash.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invcore.h"
#include "server/feed_json.h"
#include "server/resp.h"

#define EXIT_DONE 0
#define EXIT_ERROR 1
#define EXIT_USAGE 2
#define EXIT_RETENTION 3

#define FEED_PAGE_COUNT 1000u /* records asked per FEED.READ */
#define FEED_FOLLOW_BLOCK_MS 1000u /* a --follow read waits this long per call */
#define FEED_TIMEOUT_S 30 /* connect and reply timeout beyond BLOCK */
#define FEED_CHANGES_MAX 65536u /* changes of one record (a batch's are far fewer) */

static const char g_usage[] =
    "usage: invcore-feed --dir DATA_DIR [--from POS] [--item I] [--loc L] [--count N]\n"
    "       invcore-feed --host H --port P [--auth TOKEN] [--from POS|$] [--item I]\n"
    "                    [--loc L] [--count N] [--follow]\n"
    "prints one JSON record per line. exit: 0 done, 1 error, 2 usage,\n"
    "3 the records after --from are past retention\n";

typedef struct {
    const char *dir, *host, *auth;
    int port;
    uint64_t from; /* 0: the oldest; INV_FEED_FROM_END: "$" */
    uint64_t item, loc, count; /* count 0: no limit */
    bool has_item, has_loc, follow, help;
} opts;

/* ---- arguments ----------------------------------------------------------- */

static bool parse_u64(const char *s, uint64_t *v)
{
    return resp_parse_u64(s, strlen(s), v) == 0;
}

/* 0, or -1 (the caller prints the usage) after a message. */
static int parse_args(opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            o->help = true;
            return 0;
        }
        if (strcmp(a, "--follow") == 0) {
            o->follow = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "invcore-feed: %s needs a value (or is unknown)\n", a);
            return -1;
        }
        const char *v = argv[++i];
        uint64_t port = 0;
        bool ok = true;
        if (strcmp(a, "--dir") == 0)
            o->dir = v;
        else if (strcmp(a, "--host") == 0)
            o->host = v;
        else if (strcmp(a, "--auth") == 0)
            o->auth = v;
        else if (strcmp(a, "--port") == 0) {
            ok = parse_u64(v, &port) && port >= 1 && port <= 65535;
            o->port = (int)port;
        } else if (strcmp(a, "--from") == 0 && strcmp(v, "$") == 0)
            o->from = INV_FEED_FROM_END;
        else if (strcmp(a, "--from") == 0)
            ok = parse_u64(v, &o->from) && o->from != INV_FEED_FROM_END;
        else if (strcmp(a, "--item") == 0)
            ok = o->has_item = parse_u64(v, &o->item);
        else if (strcmp(a, "--loc") == 0)
            ok = o->has_loc = parse_u64(v, &o->loc);
        else if (strcmp(a, "--count") == 0)
            ok = parse_u64(v, &o->count) && o->count > 0;
        else {
            fprintf(stderr, "invcore-feed: unknown option %s\n", a);
            return -1;
        }
        if (!ok) {
            fprintf(stderr, "invcore-feed: %s: bad value '%.64s'\n", a, v);
            return -1;
        }
    }
    if ((o->dir == NULL) == (o->host == NULL)) {
        fprintf(stderr, "invcore-feed: give either --dir or --host\n");
        return -1;
    }
    if (o->host != NULL && o->port == 0) {
        fprintf(stderr, "invcore-feed: --host needs --port\n");
        return -1;
    }
    if (o->dir != NULL && (o->follow || o->from == INV_FEED_FROM_END || o->auth != NULL)) {
        fprintf(stderr, "invcore-feed: --follow, --from $ and --auth need --host\n");
        return -1;
    }
    return 0;
}

/* ---- output ----------------------------------------------------------------- */

typedef struct {
    const opts *o;
    feed_json *json;
    inv_feed_change *kept; /* the filter's changes of one record */
    uint64_t printed;
} printer;

static bool change_matches(const opts *o, const inv_feed_change *c)
{
    return (!o->has_item || c->item == o->item) && (!o->has_loc || c->location == o->loc);
}

/* Prints r (its matching changes only, under a filter) as one line.
 * Returns EXIT_DONE, or EXIT_ERROR after a message. */
static int print_record(printer *p, const inv_feed_record *r)
{
    inv_feed_record shown = *r;
    if (p->o->has_item || p->o->has_loc) {
        size_t k = 0;
        for (size_t i = 0; i < r->n_changes && k < FEED_CHANGES_MAX; i++)
            if (change_matches(p->o, &r->changes[i]))
                p->kept[k++] = r->changes[i];
        if (k == 0)
            return EXIT_DONE; /* nothing of this level here */
        shown.changes = p->kept;
        shown.n_changes = k;
    }
    const char *buf;
    size_t len;
    feed_json_begin(p->json, false);
    int rc = feed_json_add(p->json, &shown);
    if (rc == INV_OK)
        rc = feed_json_end(p->json, &buf, &len);
    if (rc != INV_OK) {
        fprintf(stderr, "invcore-feed: record at %llu cannot be written: %s\n",
                (unsigned long long)r->position, inv_strerror(rc));
        return EXIT_ERROR;
    }
    if (fwrite(buf, 1, len, stdout) != len || putchar('\n') == EOF) {
        fprintf(stderr, "invcore-feed: writing: %s\n", strerror(errno));
        return EXIT_ERROR;
    }
    p->printed++;
    return EXIT_DONE;
}

static bool printer_done(const printer *p)
{
    return p->o->count > 0 && p->printed >= p->o->count;
}

/* ---- --dir ------------------------------------------------------------------ */

static int exit_for(int rc, const char *what, uint64_t pos)
{
    fprintf(stderr, "invcore-feed: %s after %llu: %s %s\n", what, (unsigned long long)pos,
            inv_errcode(rc), inv_strerror(rc));
    return rc == INV_ELIMIT ? EXIT_RETENTION : EXIT_ERROR;
}

static int run_dir(printer *p)
{
    inv_feed *f = NULL;
    int rc = inv_feed_open_dir(p->o->dir, p->o->from, &f);
    if (rc != INV_OK)
        return exit_for(rc, "opening the feed", p->o->from);
    int code = EXIT_DONE;
    inv_feed_record r;
    while (code == EXIT_DONE && !printer_done(p)) {
        rc = inv_feed_next(f, &r);
        if (rc == INV_ENOTFOUND)
            break; /* every whole record on disk was read */
        if (rc != INV_OK) {
            code = exit_for(rc, "reading", inv_feed_position(f));
            break;
        }
        code = print_record(p, &r);
    }
    inv_feed_close(f);
    return code;
}

/* ---- --host: FEED.READ's reply into records ------------------------------- */

/* A record or change map arrives as a flat array of key, value pairs
 * (RESP2). Finds key's value, or NULL. */
static const redisReply *field(const redisReply *m, const char *key)
{
    for (size_t i = 0; i + 1 < m->elements; i += 2) {
        const redisReply *k = m->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == strlen(key) &&
            memcmp(k->str, key, k->len) == 0)
            return m->element[i + 1];
    }
    return NULL;
}

static bool is_map(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements % 2 == 0;
}

/* An integer field (absent: 0); false when of another type. */
static bool int_field(const redisReply *m, const char *key, int64_t *v)
{
    const redisReply *r = field(m, key);
    *v = r != NULL && r->type == REDIS_REPLY_INTEGER ? (int64_t)r->integer : 0;
    return r == NULL || r->type == REDIS_REPLY_INTEGER;
}

/* A string field (absent: NULL, 0). */
static bool str_field(const redisReply *m, const char *key, const char **s, size_t *n)
{
    const redisReply *r = field(m, key);
    *s = r != NULL && r->type == REDIS_REPLY_STRING ? r->str : NULL;
    *n = *s != NULL ? r->len : 0;
    return r == NULL || r->type == REDIS_REPLY_STRING;
}

static bool id_field(const redisReply *m, const char *key, uint64_t *v)
{
    const char *s;
    size_t n;
    *v = 0;
    return str_field(m, key, &s, &n) && (s == NULL || resp_parse_u64(s, n, v) == 0);
}

static bool kind_field(const redisReply *m, inv_feed_kind *k)
{
    const char *s;
    size_t n;
    if (!str_field(m, "kind", &s, &n) || s == NULL)
        return false;
    for (int i = 1; i < INV_FEED_KINDS; i++) {
        const char *name = inv_feed_kind_str((inv_feed_kind)i);
        if (name != NULL && strlen(name) == n && memcmp(name, s, n) == 0) {
            *k = (inv_feed_kind)i;
            return true;
        }
    }
    return false;
}

/* {name: n} into v[], setting the names' bits in *mask. */
static bool qty_field(const redisReply *m, const char *key, int64_t *v, uint32_t *mask)
{
    const redisReply *q = field(m, key);
    if (q == NULL)
        return true;
    if (!is_map(q))
        return false;
    for (size_t i = 0; i < q->elements; i += 2) {
        inv_qty_name name;
        const redisReply *k = q->element[i], *n = q->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || n->type != REDIS_REPLY_INTEGER ||
            inv_qty_name_parse(k->str, k->len, &name) != INV_OK)
            return false;
        v[name] = n->integer;
        if (mask != NULL)
            *mask |= 1u << name;
    }
    return true;
}

static bool change_from(const redisReply *m, inv_feed_change *c)
{
    int64_t rev = 0, created = 0, deleted = 0;
    const char *reason = NULL;
    size_t reason_len = 0;
    memset(c, 0, sizeof *c);
    bool ok =
        is_map(m) && kind_field(m, &c->kind) && id_field(m, "item", &c->item) &&
        id_field(m, "location", &c->location) && int_field(m, "revision", &rev) &&
        int_field(m, "created", &created) && int_field(m, "deleted", &deleted) &&
        qty_field(m, "delta", c->delta, NULL) && qty_field(m, "after", c->after, &c->after_known) &&
        str_field(m, "hold", &c->hold_id, &c->hold_id_len) &&
        str_field(m, "ref", &c->ref, &c->ref_len) && str_field(m, "reason", &reason, &reason_len);
    c->revision = (uint64_t)rev;
    c->created = created != 0;
    c->deleted = deleted != 0;
    return ok && (reason == NULL || inv_reason_parse(reason, reason_len, &c->reason) == INV_OK);
}

/* One record map into *r (changes into changes[FEED_CHANGES_MAX]). */
static bool record_from(const redisReply *m, inv_feed_record *r, inv_feed_change *changes)
{
    int64_t pos = 0, group = 0, deleted = 0;
    memset(r, 0, sizeof *r);
    const redisReply *ch = is_map(m) ? field(m, "changes") : NULL;
    if (ch == NULL || ch->type != REDIS_REPLY_ARRAY || ch->elements > FEED_CHANGES_MAX)
        return false;
    bool ok = int_field(m, "position", &pos) && int_field(m, "group", &group) &&
              int_field(m, "time_ms", &r->time_ms) && kind_field(m, &r->kind) &&
              id_field(m, "item", &r->item) && id_field(m, "location", &r->location) &&
              int_field(m, "deleted", &deleted) &&
              str_field(m, "hold", &r->hold_id, &r->hold_id_len) &&
              str_field(m, "request_id", &r->request_id, &r->request_id_len) &&
              str_field(m, "actor", &r->actor, &r->actor_len);
    for (size_t i = 0; ok && i < ch->elements; i++)
        ok = change_from(ch->element[i], &changes[i]);
    r->position = (uint64_t)pos;
    r->group = (uint64_t)group;
    r->deleted = deleted != 0;
    r->changes = changes;
    r->n_changes = ch->elements;
    return ok;
}

/* One FEED.READ; *from moves to the page's next position. *caught_up:
 * the page was empty and did not move (or BLOCK timed out). */
static int read_page(printer *p, redisContext *c, uint64_t *from, bool *caught_up,
                     inv_feed_change *changes)
{
    char pos[24], item[24], loc[24], count[24], block[24];
    const char *argv[12];
    size_t n = 0;
    snprintf(count, sizeof count, "%u", FEED_PAGE_COUNT);
    snprintf(block, sizeof block, "%u", FEED_FOLLOW_BLOCK_MS);
    snprintf(pos, sizeof pos, "%llu", (unsigned long long)*from);
    argv[n++] = "FEED.READ";
    argv[n++] = "FROM";
    argv[n++] = *from == INV_FEED_FROM_END ? "$" : pos;
    argv[n++] = "COUNT";
    argv[n++] = count;
    if (p->o->follow) {
        argv[n++] = "BLOCK";
        argv[n++] = block;
    }
    if (p->o->has_item) {
        snprintf(item, sizeof item, "%llu", (unsigned long long)p->o->item);
        argv[n++] = "ITEM";
        argv[n++] = item;
    }
    if (p->o->has_loc) {
        snprintf(loc, sizeof loc, "%llu", (unsigned long long)p->o->loc);
        argv[n++] = "LOC";
        argv[n++] = loc;
    }
    redisReply *r = redisCommandArgv(c, (int)n, argv, NULL);
    if (r == NULL) {
        fprintf(stderr, "invcore-feed: FEED.READ: %s\n", c->errstr);
        return EXIT_ERROR;
    }
    int code = EXIT_DONE;
    *caught_up = r->type == REDIS_REPLY_NIL; /* BLOCK timed out */
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "invcore-feed: FEED.READ: %s\n", r->str);
        code = strncmp(r->str, "LIMIT history", 13) == 0 ? EXIT_RETENTION : EXIT_ERROR;
    } else if (r->type != REDIS_REPLY_NIL && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                                              r->element[0]->type != REDIS_REPLY_INTEGER ||
                                              r->element[1]->type != REDIS_REPLY_ARRAY)) {
        fprintf(stderr, "invcore-feed: FEED.READ: unexpected reply (type %d)\n", r->type);
        code = EXIT_ERROR;
    } else if (r->type == REDIS_REPLY_ARRAY) {
        const redisReply *recs = r->element[1];
        uint64_t next = (uint64_t)r->element[0]->integer;
        *caught_up = recs->elements == 0 && next == *from;
        for (size_t i = 0; i < recs->elements && code == EXIT_DONE && !printer_done(p); i++) {
            inv_feed_record rec;
            if (!record_from(recs->element[i], &rec, changes)) {
                fprintf(stderr, "invcore-feed: FEED.READ: malformed record %zu\n", i);
                code = EXIT_ERROR;
            } else
                code = print_record(p, &rec);
        }
        *from = next;
    }
    freeReplyObject(r);
    return code;
}

static int run_host(printer *p)
{
    struct timeval tv = {FEED_TIMEOUT_S, 0};
    redisContext *c = redisConnectWithTimeout(p->o->host, p->o->port, tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "invcore-feed: connecting to %s:%d: %s\n", p->o->host, p->o->port,
                c ? c->errstr : "out of memory");
        redisFree(c);
        return EXIT_ERROR;
    }
    redisSetTimeout(c, tv);
    int code = EXIT_DONE;
    if (p->o->auth != NULL) {
        redisReply *r = redisCommand(c, "AUTH %s", p->o->auth);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "invcore-feed: AUTH: %s\n", r ? r->str : c->errstr);
            code = EXIT_ERROR;
        }
        freeReplyObject(r);
    }
    inv_feed_change *changes = malloc(FEED_CHANGES_MAX * sizeof *changes);
    uint64_t from = p->o->from;
    bool caught_up = false;
    if (changes == NULL)
        code = EXIT_ERROR;
    while (code == EXIT_DONE && !printer_done(p) && (p->o->follow || !caught_up)) {
        code = read_page(p, c, &from, &caught_up, changes);
        fflush(stdout); /* a follower's reader sees each page at once */
    }
    free(changes);
    redisFree(c);
    return code;
}

int main(int argc, char **argv)
{
    opts o;
    if (parse_args(&o, argc, argv) != 0) {
        fputs(g_usage, stderr);
        return EXIT_USAGE;
    }
    if (o.help) {
        fputs(g_usage, stdout);
        return EXIT_DONE;
    }
    printer p = {&o, feed_json_new(), malloc(FEED_CHANGES_MAX * sizeof(inv_feed_change)), 0};
    int code = EXIT_ERROR;
    if (p.json == NULL || p.kept == NULL)
        fprintf(stderr, "invcore-feed: out of memory\n");
    else
        code = o.dir != NULL ? run_dir(&p) : run_host(&p);
    if (fflush(stdout) != 0 && code == EXIT_DONE) {
        fprintf(stderr, "invcore-feed: writing: %s\n", strerror(errno));
        code = EXIT_ERROR;
    }
    feed_json_free(p.json);
    free(p.kept);
    return code;
}
