/*
 * vec.h — a growable array of fixed-size entries, for the cold paths that
 * collect what a walk found before acting on it (a table scan's page,
 * recovery's reconciliation, the holds' invariant check, pending batches).
 *
 * It allocates, so it is never on a hot path; one owner, no sharing
 * between threads. It grows by doubling, up to VEC_BYTES_MAX, and a
 * failed growth leaves it as it was (the caller answers INV_ENOMEM).
 */
#ifndef INV_VEC_H
#define INV_VEC_H

#include "invcore.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Entries of the first allocation. */
#define VEC_CAP_FIRST 64
/* No array grows past this many bytes: it keeps cap * size from
 * overflowing, far above any walk's needs (a whole table of the largest
 * capacity, TABLE_CAPACITY_MAX entries of a few words each). */
#define VEC_BYTES_MAX ((size_t)1 << 40)

typedef struct {
    void *items;
    size_t n, cap; /* entries held, entries allocated */
    size_t size; /* bytes of one entry */
} vec;

/* An empty vec of entries of type T. */
#define VEC_OF(T) ((vec){NULL, 0, 0, sizeof(T)})

/* Appends a copy of entry (v->size bytes): INV_OK, or INV_ENOMEM (out of
 * memory, or past VEC_BYTES_MAX) with v unchanged. */
static inline int vec_push(vec *v, const void *entry)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : VEC_CAP_FIRST;
        if (cap > VEC_BYTES_MAX / v->size)
            return INV_ENOMEM;
        void *items = realloc(v->items, cap * v->size);
        if (!items)
            return INV_ENOMEM;
        v->items = items;
        v->cap = cap;
    }
    memcpy((char *)v->items + v->n * v->size, entry, v->size);
    v->n++;
    return INV_OK;
}

/* Frees the entries; v is empty again (same entry size). */
static inline void vec_free(vec *v)
{
    free(v->items);
    v->items = NULL;
    v->n = v->cap = 0;
}

#endif /* INV_VEC_H */
