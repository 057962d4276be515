/*
 * cpu.h — processor hints shared by the spin loops (journal waits,
 * table_update's back-off). No state; safe anywhere.
 */
#ifndef INV_CPU_H
#define INV_CPU_H

/* Tells the core we are spinning: saves power and, on SMT, yields the
 * pipeline to the sibling; also slows the loop so a contended cache line is
 * left alone for a few dozen cycles. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#endif /* INV_CPU_H */
