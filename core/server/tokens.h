/*
 * tokens.h — access tokens: which tenant a token opens and with which
 * scope, the optional per-token rate limit (a leaky bucket like Shopify's
 * REST API), and the throttle on failed AUTH attempts.
 *
 * A token file (--tokens FILE) has one token per line:
 *     TOKEN TENANT SCOPE [BUCKET/LEAK_PER_S]
 * separated by spaces or tabs; '#' starts a comment (whole line or after
 * the fields), so a token cannot contain '#'; blank lines are skipped;
 * lines end in \n or \r\n. A token is TOKEN_BYTES_MIN..TOKEN_BYTES_MAX
 * bytes of printable ASCII (0x21..0x7e, '#' excepted). SCOPE is read,
 * write or admin. The optional fourth field turns on the rate limit for
 * that token: a bucket of BUCKET requests leaking LEAK_PER_S per second
 * (Shopify REST: 40/2). A token may name a tenant that does not exist
 * (yet): tokens.c does not know tenants, the server answers such requests
 * NOTFOUND.
 *
 * Tokens are kept only as SHA-256 digests (libcrypto) and compared with
 * CRYPTO_memcmp, so neither memory nor timing gives one away. A loaded
 * token_set is immutable except for the rate-limit buckets (atomics) and is
 * shared by reference count: reload builds a new set and swaps it in
 * (token_registry); a connection holding the old set keeps it alive until
 * it notices the swap (one relaxed pointer load per request) and looks its
 * digest up in the new one.
 *
 * Invariants: a set never holds two entries with one digest (the file is
 * refused); every entry's tenant passes inv_tenant_name_check; bucket
 * state changes only through token_rate_take's CAS loop.
 */
#ifndef INV_SERVER_TOKENS_H
#define INV_SERVER_TOKENS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "invcore.h"

#define TOKEN_BYTES_MIN 8u /* a shorter token is refused (guessable) */
#define TOKEN_BYTES_MAX 512u /* as SERVER_REQUIREPASS_MAX */
#define TOKEN_DIGEST_BYTES 32u /* SHA-256 */
#define TOKENS_FILE_BYTES_MAX (64u << 20)
#define TOKENS_MAX (1u << 20) /* tokens in one file */
#define TOKEN_BUCKET_MAX 1000000u /* requests a bucket holds */
#define TOKEN_LEAK_PER_S_MAX 1000000u

/* Ordered: each scope allows everything the ones below it do. */
typedef enum {
    TOKEN_SCOPE_NONE = 0, /* not authenticated */
    TOKEN_SCOPE_READ = 1, /* reads */
    TOKEN_SCOPE_WRITE = 2, /* reads and stock / catalog / hold changes */
    TOKEN_SCOPE_ADMIN = 3 /* everything: tenants, config, snapshot, ... */
} token_scope;

/* "read" / "write" / "admin" ("none" for NONE). */
const char *token_scope_name(token_scope s);

typedef struct {
    uint8_t digest[TOKEN_DIGEST_BYTES];
    char tenant[INV_TENANT_NAME_MAX + 1]; /* NUL-terminated */
    uint8_t tenant_len;
    token_scope scope;
    uint32_t bucket_size; /* 0: no rate limit */
    uint32_t leak_per_s;
    /* The bucket: see token_rate_take (tokens.c keeps the instant the
     * bucket will be empty, which folds its level and the time of the last
     * leak into one word). */
    _Atomic uint64_t bucket;
} token_entry;

typedef struct token_set token_set;

/* SHA-256 of token (len bytes) into digest: true, or false when
 * libcrypto failed (out of memory; digest zeroed, not to be used). */
bool token_digest(const char *token, size_t len, uint8_t digest[TOKEN_DIGEST_BYTES]);

/* Parses a token file into a new set (one reference, the caller's).
 * INV_OK; INV_EINVALID with "PATH:LINE: reason" in err for any bad line
 * (short or long token, bad tenant name, unknown scope, bad rate field,
 * extra fields, a duplicate token), nothing loaded; INV_EIO when the file
 * cannot be read or is not a regular file (err says why); INV_ELIMIT
 * beyond TOKENS_MAX or TOKENS_FILE_BYTES_MAX; INV_ENOMEM. */
int token_set_load(const char *path, token_set **out, char *err, size_t errlen);
/* An empty set (no tokens), one reference. NULL: out of memory. */
token_set *token_set_empty(void);
void token_set_ref(token_set *s);
void token_set_unref(token_set *s); /* NULL: no-op; the last one frees */
size_t token_set_count(const token_set *s);

/* The entry of token (len bytes) or of a digest, NULL when none. Constant
 * time in the token's content: the digest is compared with CRYPTO_memcmp
 * whatever the lookup path. The entry lives as long as the set. */
token_entry *token_set_find(const token_set *s, const char *token, size_t len);
token_entry *token_set_find_digest(const token_set *s, const uint8_t digest[TOKEN_DIGEST_BYTES]);

/* The rate limit: true when the request may run (its drop is in the
 * bucket), false when the bucket is full, with *retry_after_ms the wait
 * until one drop has leaked (>= 1). Always true without a limit. Lock-free
 * (one CAS loop), safe from any thread. now_ms: a monotonic clock. */
bool token_rate_take(token_entry *t, int64_t now_ms, uint64_t *retry_after_ms);

/* ---- the registry: the current set, swapped by reload ---------------- */

typedef struct {
    _Atomic(token_set *) current; /* never NULL once initialised */
    pthread_mutex_t lock; /* reload and token_registry_acquire only */
    const char *path; /* NULL: no --tokens file (the set stays empty) */
    _Atomic uint64_t reloads, reload_failures;
} token_registry;

/* Loads path (NULL: an empty set). Same errors as token_set_load. */
int token_registry_init(token_registry *r, const char *path, char *err, size_t errlen);
void token_registry_destroy(token_registry *r);
/* Loads the file again and swaps it in; on any error the current set stays
 * (and the error is returned with err filled). */
int token_registry_reload(token_registry *r, char *err, size_t errlen);
/* The current set with a reference for the caller (who unrefs it). */
token_set *token_registry_acquire(token_registry *r);
/* Has the set changed since s? One relaxed load: a hint, the caller then
 * acquires the current set and looks its digest up again. */
bool token_registry_changed(token_registry *r, const token_set *s);

/* ---- failed AUTH attempts -----------------------------------------------
 * Each connection counts its failures; after the first, a further AUTH is
 * refused unchecked until a penalty has passed, doubling per failure
 * (AUTH_PENALTY_MS_FIRST .. AUTH_PENALTY_MS_MAX); after AUTH_FAILURES_CLOSE
 * failures the connection is closed. A success resets the count. */
#define AUTH_PENALTY_MS_FIRST 10u
#define AUTH_PENALTY_MS_MAX 5000u
#define AUTH_FAILURES_CLOSE 10u

typedef struct {
    uint32_t failures;
    int64_t next_allowed_ms; /* monotonic; 0: no wait */
} auth_throttle;

/* May an AUTH be checked now? false: refused unchecked, *wait_ms left. */
bool auth_throttle_allow(const auth_throttle *a, int64_t now_ms, uint64_t *wait_ms);
/* Records a failure; returns true when the connection must now close. */
bool auth_throttle_fail(auth_throttle *a, int64_t now_ms);
void auth_throttle_ok(auth_throttle *a);

#endif /* INV_SERVER_TOKENS_H */
