/*
 * actor.h — who is making the calling thread's changes (private part of
 * inv_set_actor): a per-thread label that batch and hold records carry in
 * the journal, so the change feed can say who changed what.
 *
 * A bottom module (it includes only invcore.h): any module that encodes a
 * record may read it without an include cycle. The label belongs to the
 * thread that set it; nothing is shared, so nothing is synchronised.
 * Invariant: 0 <= length <= INV_ACTOR_MAX, and the bytes beyond the length
 * are never read.
 */
#ifndef INV_ACTOR_H
#define INV_ACTOR_H

#include "invcore.h"

#include <stddef.h>
#include <stdint.h>

/* The calling thread's actor label: *bytes (not NUL-terminated, valid
 * until the thread's next inv_set_actor) and its length (0: none). */
size_t actor_get(const uint8_t **bytes);

#endif /* INV_ACTOR_H */
