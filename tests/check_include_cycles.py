#!/usr/bin/python3
"""
check_include_cycles.py — fails when the #include "..." graph between the
modules of core/ has a cycle (`make check-cycles`, part of `make test`).

Modules. A module is a file's path under core/ without .c or .h:
core/level.c and core/level.h are module `level`; core/server/resp.c is
`server/resp`. The only exception is PARTS below: files that are parts of
one module split over several files. An edge A -> B means a file of A
includes a header of B; a module including its own header is no edge.
Headers outside core/ (include/invcore.h, system headers) are not modules.

A quoted include resolves as the compiler resolves it (-Iinclude -Icore):
the including file's directory first, then core/, then include/.

Output: with a cycle, every group of modules that reach each other (a
strongly connected component), one cycle through it, and every edge
inside it with the line that makes it; exit 1. Without one:
"check-cycles: ok" and exit 0. --order also prints the modules layer by
layer, bottom first (a module's layer is one above its highest include).
Limits: reads at most MAX_FILES files of at most MAX_BYTES each.
"""
import fnmatch
import os
import re
import sys

# A tree larger than this is not ours: refuse rather than walk it.
MAX_FILES = 2000
MAX_BYTES = 4 << 20

# Modules split over several files: (glob under core/, the module).
PARTS = [
    # The command layer: command.c (table, dispatch) and the cmd_*.c handler
    # files share the private header cmd_internal.h, each calling the other
    # (the table names the handlers; handlers use its helpers).
    ("server/cmd_*", "server/command"),
]

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def module_of(rel):
    """The module of a path relative to core/ (None: not a C file)."""
    base, ext = os.path.splitext(rel)
    if ext not in (".c", ".h"):
        return None
    for pattern, module in PARTS:
        if fnmatch.fnmatch(base, pattern):
            return module
    return base


def source_files(core):
    files = []
    for root, _dirs, names in os.walk(core):
        for name in sorted(names):
            if name.endswith((".c", ".h")):
                files.append(os.path.join(root, name))
    if len(files) > MAX_FILES:
        sys.exit("check-cycles: more than %d files under %s" % (MAX_FILES, core))
    return sorted(files)


def resolve(core, including, name):
    """The path under core/ that #include "name" in including reaches."""
    top = os.path.dirname(os.path.abspath(core))
    for d in (os.path.dirname(including), core, os.path.join(top, "include")):
        path = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(path):
            rel = os.path.relpath(path, core)
            return None if rel.startswith("..") else rel
    return None


def build_graph(core):
    """{module: {included module: [(file, line, text), ...]}}"""
    graph = {}
    for path in source_files(core):
        if os.path.getsize(path) > MAX_BYTES:
            sys.exit("check-cycles: %s is larger than %d bytes" % (path, MAX_BYTES))
        src = module_of(os.path.relpath(path, core))
        graph.setdefault(src, {})
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                rel = m and resolve(core, path, m.group(1))
                dst = rel and module_of(rel)
                if dst and dst != src:
                    graph.setdefault(dst, {})
                    where = (path, lineno, line.strip())
                    graph[src].setdefault(dst, []).append(where)
    return graph


def components(graph):
    """Strongly connected components (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, succ = work[-1]
            w = next(succ, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on_stack.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    out.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = len(index)
                stack.append(w)
                on_stack.add(w)
                work.append((w, iter(sorted(graph[w]))))
            elif w in on_stack:
                low[v] = min(low[v], index[w])
    return out


def shortest_cycle(graph, comp):
    """A shortest cycle through comp's first module, staying inside comp."""
    start, members = comp[0], set(comp)
    parent, queue = {start: None}, [start]
    for v in queue:
        for w in sorted(graph[v]):
            if w == start:
                path = [v]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return path[::-1] + [start]  # path runs back to start
            if w in members and w not in parent:
                parent[w] = v
                queue.append(w)
    return comp


def layers(graph):
    """Each module's layer: 0 for no includes, else 1 + its highest include's."""
    layer = {}

    def depth(v):
        if v not in layer:
            layer[v] = 1 + max((depth(w) for w in graph[v]), default=-1)
        return layer[v]

    for v in graph:
        depth(v)
    return layer


def report(graph, cycles, core):
    top = os.path.dirname(os.path.abspath(core))
    for comp in cycles:
        print("check-cycles: these modules include each other: " + ", ".join(comp))
        print("  cycle: " + " -> ".join(shortest_cycle(graph, comp)))
        for v in comp:
            for w in sorted(graph[v]):
                if w in comp:
                    for path, lineno, text in graph[v][w]:
                        rel = os.path.relpath(path, top)
                        print("  %s -> %s  (%s:%d %s)" % (v, w, rel, lineno, text))


def main(argv):
    args = [a for a in argv[1:] if a != "--order"]
    core = args[0] if args else "core"
    if not os.path.isdir(core):
        sys.exit("check-cycles: no directory %s" % core)
    graph = build_graph(core)
    cycles = [c for c in components(graph) if len(c) > 1]
    if cycles:
        report(graph, cycles, core)
        return 1
    if "--order" in argv:
        layer = layers(graph)
        for n in range(max(layer.values(), default=-1) + 1):
            print("  %d: %s" % (n, " ".join(sorted(v for v in layer if layer[v] == n))))
    print("check-cycles: ok (%d modules, no include cycle)" % len(graph))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
