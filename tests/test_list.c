/*
 * test_list.c — core/server/list.h, the intrusive list the event loops keep
 * their connections on: order of push_front / push_back, removal from the
 * front, middle and back, removal while iterating, the count, and that a
 * zeroed node is unlinked and removing it again is a no-op.
 */
#include <criterion/criterion.h>

#include "server/list.h"

#define ELEMS 5

typedef struct {
    int value;
    list_node a, b; /* on two lists at once */
} elem;

static elem *elem_of_a(list_node *n)
{
    return LIST_ENTRY(n, elem, a);
}

/* Values along h (through node a), into out; returns how many. */
static size_t values(const list_head *h, int *out, size_t cap)
{
    size_t k = 0;
    for (list_node *n = list_first(h); n != NULL && k < cap; n = list_next(n))
        out[k++] = elem_of_a(n)->value;
    return k;
}

/* e[i].value = i, all on h (through a) in order. */
static void fill(elem *e, list_head *h)
{
    for (int i = 0; i < ELEMS; i++) {
        e[i].value = i;
        list_push_back(h, &e[i].a);
    }
}

static void expect_values(const list_head *h, const int *want, size_t n)
{
    int got[ELEMS + 1];
    cr_assert_eq(values(h, got, ELEMS + 1), n);
    cr_assert_eq(h->count, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(got[i], want[i], "element %zu: %d, want %d", i, got[i], want[i]);
    cr_assert_eq(list_empty(h), n == 0);
}

Test(list, push_back_keeps_fifo_order_and_push_front_lifo)
{
    elem e[ELEMS] = {{0}};
    list_head fifo = {0}, lifo = {0};
    fill(e, &fifo);
    for (int i = 0; i < ELEMS; i++)
        list_push_front(&lifo, &e[i].b);
    const int want[ELEMS] = {0, 1, 2, 3, 4};
    expect_values(&fifo, want, ELEMS);
    int k = ELEMS - 1;
    for (list_node *n = list_first(&lifo); n != NULL; n = list_next(n), k--)
        cr_assert_eq(LIST_ENTRY(n, elem, b)->value, k);
    cr_assert_eq(k, -1);
}

Test(list, remove_unlinks_from_front_middle_and_back)
{
    elem e[ELEMS] = {{0}};
    list_head h = {0};
    fill(e, &h);
    list_remove(&h, &e[2].a);
    expect_values(&h, (const int[]){0, 1, 3, 4}, 4);
    list_remove(&h, &e[0].a);
    expect_values(&h, (const int[]){1, 3, 4}, 3);
    list_remove(&h, &e[4].a);
    expect_values(&h, (const int[]){1, 3}, 2);
    cr_assert(!list_linked(&h, &e[2].a));
    list_remove(&h, &e[2].a); /* again: a no-op */
    expect_values(&h, (const int[]){1, 3}, 2);
    list_remove(&h, &e[1].a);
    list_remove(&h, &e[3].a);
    expect_values(&h, NULL, 0);
    cr_assert_null(h.first);
    cr_assert_null(h.last);
}

Test(list, a_zeroed_node_is_unlinked_and_a_lone_node_is_linked)
{
    elem x = {0};
    list_head h = {0};
    cr_assert(!list_linked(&h, &x.a));
    list_push_back(&h, &x.a);
    cr_assert(list_linked(&h, &x.a), "the only node has no neighbours");
    list_remove(&h, &x.a);
    cr_assert(!list_linked(&h, &x.a));
    list_push_front(&h, &x.a); /* re-adding after removal */
    cr_assert_eq(h.count, 1);
}

Test(list, removing_the_current_node_while_iterating_visits_every_node)
{
    elem e[ELEMS] = {{0}};
    list_head h = {0};
    fill(e, &h);
    int seen = 0;
    for (list_node *n = list_first(&h), *next; n != NULL; n = next) {
        next = list_next(n);
        cr_assert_eq(elem_of_a(n)->value, seen++);
        if (elem_of_a(n)->value % 2 == 0)
            list_remove(&h, n);
    }
    cr_assert_eq(seen, ELEMS);
    expect_values(&h, (const int[]){1, 3}, 2);
}
