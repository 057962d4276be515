/*
 * slowlog.h — the slow log (SLOWLOG) and the latency monitor (LATENCY):
 * what the server remembers about commands that ran at least
 * --slowlog-log-slower-than microseconds.
 *
 * Contract: only slow commands reach this module; a fast command costs the
 * caller one compare and nothing here. Each thread that logs owns a ring
 * (created at its first slow command) guarded by its own mutex, so a slow
 * command locks only its thread's ring; readers (SLOWLOG GET/LEN/RESET)
 * lock the rings one after another, in registration order, and merge them
 * by entry id (ids come from one counter, so they order all entries). The
 * latency monitor is small and global, under one mutex, also touched only
 * by slow commands and LATENCY.
 */
#ifndef INV_SERVER_SLOWLOG_H
#define INV_SERVER_SLOWLOG_H

#include <stddef.h>
#include <stdint.h>

#include "server/resp.h"

#define SLOWLOG_ARGS_MAX 32u /* arguments kept per entry (as Redis) */
#define SLOWLOG_ARG_BYTES_MAX 128u /* bytes kept per argument (as Redis) */
#define SLOWLOG_CLIENT_MAX 64u /* bytes of the client address or name */
#define SLOWLOG_RINGS_MAX \
    256u /* threads with their own ring; later
                                     * threads share the last one */
#define SLOWLOG_GET_DEFAULT 10u /* SLOWLOG GET without a count */

/* Latency monitor: events, samples kept per event (one per second, the
 * worst of that second), as Redis's LATENCY_TS_LEN. */
#define LATENCY_SAMPLES_MAX 160u

typedef enum {
    LATENCY_EVENT_COMMAND = 0, /* "command": a slow command */
    LATENCY_EVENT_FAST_COMMAND = 1, /* "fast-command": a slow O(1) command */
    LATENCY_EVENTS
} latency_event;

/* Logs one command (argv[0..argc)) that took duration_us: arguments from
 * index redact_from on are logged as "(redacted)" (pass argc to keep
 * all); addr and name may be NULL. max_len: entries kept (0: none). */
void slowlog_push(const resp_arg *argv, size_t argc, size_t redact_from, uint64_t duration_us,
                  const char *addr, const char *name, unsigned max_len);
/* Entries kept, at most max_len. */
size_t slowlog_len(unsigned max_len);
/* Forgets every entry (ids go on counting). */
void slowlog_reset(void);
/* Writes SLOWLOG GET's reply: the newest min(count, kept, max_len)
 * entries, newest first, each [id, unix_time, duration_us, [args...],
 * client_addr, client_name]. */
void slowlog_reply(resp_out *o, size_t count, unsigned max_len);

/* Records a latency sample of event (a slow command), in milliseconds. */
void latency_add(latency_event ev, uint64_t latency_ms);
/* The event's name ("command", ...), or NULL for an out of range value. */
const char *latency_event_name(latency_event ev);
/* The event of that name; -1 if none. */
int latency_event_find(const char *name, size_t len);
/* LATENCY LATEST: [[event, unix_time, latest_ms, max_ms], ...]. */
void latency_reply_latest(resp_out *o);
/* LATENCY HISTORY: [[unix_time, latency_ms], ...], oldest first. */
void latency_reply_history(resp_out *o, latency_event ev);
/* Forgets the event's samples; returns 1 if it had any. */
int latency_reset(latency_event ev);
/* LATENCY DOCTOR: a short human-readable report into buf (NUL ended). */
void latency_doctor(char *buf, size_t cap, int64_t threshold_us);

#endif /* INV_SERVER_SLOWLOG_H */
