/*
 * list.h — an intrusive doubly linked list: a list_node embedded in each
 * element, a list_head that owns the ends and the count, LIST_ENTRY to get
 * from a node back to its element. No allocation, O(1) add and remove.
 *
 * Contract:
 *  - Single-threaded: a list and its nodes belong to one thread (in the
 *    server, one event loop); nothing here is atomic.
 *  - A node is unlinked when both its pointers are NULL: a zeroed node
 *    (calloc) is unlinked, and list_remove leaves it so. list_linked says
 *    which; removing an unlinked node is a no-op, adding a linked one is a
 *    bug (asserted).
 *  - A node is on at most one list at a time through one list_node; an
 *    element on several lists embeds one node per list.
 *  - Removing the current node while iterating is safe when the next one
 *    was read first (see list_next).
 */
#ifndef INV_SERVER_LIST_H
#define INV_SERVER_LIST_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct list_node {
    struct list_node *prev, *next;
} list_node;

typedef struct {
    list_node *first, *last;
    size_t count;
} list_head;

/* The element of type that embeds node as its member. */
#define LIST_ENTRY(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

static inline bool list_empty(const list_head *h)
{
    return h->first == NULL;
}

/* On some list (only its own list knows which: a node names no head). */
static inline bool list_linked(const list_head *h, const list_node *n)
{
    return n->prev != NULL || n->next != NULL || h->first == n;
}

static inline list_node *list_first(const list_head *h)
{
    return h->first;
}

/* The node after n, or NULL at the end. */
static inline list_node *list_next(const list_node *n)
{
    return n->next;
}

/* Links n between prev and next, neighbours on h (NULL: that end). */
static inline void list_link(list_head *h, list_node *prev, list_node *next, list_node *n)
{
    assert(!list_linked(h, n));
    n->prev = prev;
    n->next = next;
    if (prev)
        prev->next = n;
    else
        h->first = n;
    if (next)
        next->prev = n;
    else
        h->last = n;
    h->count++;
}

static inline void list_push_front(list_head *h, list_node *n)
{
    list_link(h, NULL, h->first, n);
}

static inline void list_push_back(list_head *h, list_node *n)
{
    list_link(h, h->last, NULL, n);
}

/* Unlinks n from h (no-op if n is not on it). */
static inline void list_remove(list_head *h, list_node *n)
{
    if (!list_linked(h, n))
        return;
    if (n->prev)
        n->prev->next = n->next;
    else
        h->first = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        h->last = n->prev;
    n->prev = n->next = NULL;
    assert(h->count > 0);
    h->count--;
}

#endif /* INV_SERVER_LIST_H */
