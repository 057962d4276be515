/*
 * alloc.h — the heap, through the fault seam.
 *
 * Role: every allocation in core/ (and the server's on a request's path)
 * is inv_malloc / inv_calloc / inv_realloc, so a test can fail the Nth one
 * (FAULT_ALLOC) and check that the caller returns INV_ENOMEM, leaks
 * nothing and leaves its state whole. free() stays free().
 *
 * Invariants: a failed call returns NULL with errno ENOMEM and, for
 * inv_realloc, leaves the old block untouched, exactly as libc does.
 */
#ifndef INVCORE_ALLOC_H
#define INVCORE_ALLOC_H

#include <errno.h>
#include <stdlib.h>

#include "fault.h"

static inline void *inv_malloc(size_t bytes)
{
    if (fault_check(FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return malloc(bytes);
}

static inline void *inv_calloc(size_t n, size_t size)
{
    if (fault_check(FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return calloc(n, size);
}

static inline void *inv_realloc(void *p, size_t bytes)
{
    if (fault_check(FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, bytes);
}

#endif
