/*
 * actor.c — the calling thread's actor label (actor.h): inv_set_actor
 * stores it, the record encoders (batch.c, hold.c) read it.
 *
 * Thread-local, so setting and reading it take no lock and no atomic: a
 * server's event loop thread sets its connection's label before it runs
 * that connection's command, and the records that command writes on the
 * same thread carry it. Invariant: actor_len <= INV_ACTOR_MAX.
 */
#include "actor.h"

#include <assert.h>
#include <string.h>

static __thread uint8_t actor_bytes[INV_ACTOR_MAX];
static __thread size_t actor_len;

int inv_set_actor(const char *actor, size_t len)
{
    if (!actor || len == 0) {
        actor_len = 0; /* cleared: the thread's next changes name nobody */
        return INV_OK;
    }
    if (len > INV_ACTOR_MAX)
        return INV_ELIMIT; /* refused whole: a cut label could name someone else */
    memcpy(actor_bytes, actor, len);
    actor_len = len;
    assert(actor_len >= 1 && actor_len <= INV_ACTOR_MAX);
    return INV_OK;
}

size_t actor_get(const uint8_t **bytes)
{
    assert(actor_len <= INV_ACTOR_MAX);
    assert(bytes != NULL); /* the encoders pass where to point */
    *bytes = actor_bytes;
    return actor_len;
}
