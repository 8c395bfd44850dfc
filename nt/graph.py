"""Graph helpers for dependency orders (nt/svcorder.py): iterative, so that chains as deep
as a real service database never meet Python's recursion limit."""

from __future__ import annotations


def strongly_connected(nodes: list[int], edges: list[list[int]]) -> list[list[int]]:
    """Tarjan's strongly connected components, iteratively (chains of 750 entries
    must not hit the recursion limit); dependencies come out before dependents."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, pos = work.pop()
            if pos == 0:
                index[v] = low[v] = len(index)
                stack.append(v)
                on_stack.add(v)
            recurse = False
            for k in range(pos, len(edges[v])):
                w = edges[v][k]
                if w not in index:
                    work.append((v, k + 1))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return out


def shortest_cycle(comp: list[int], edges: list[list[int]], start: int) -> list[int]:
    """A shortest cycle through ``start`` inside its component (breadth-first)."""
    inside = set(comp)
    back: dict[int, int] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in edges[v]:
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(back[path[-1]])
                    return path[::-1]
                if w in inside and w not in back:
                    back[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp  # not reached: every member of a component lies on a cycle
