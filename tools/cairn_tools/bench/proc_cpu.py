"""CPU and memory of process trees, read from /proc: what each process of a benchmark costs per operation.

A tree's CPU is the utime+stime of the root and every living descendant, plus cutime+cstime (children that
exited and were reaped). Postgres backends and `cairn serve --workers` processes are children of one root, so
one pid names all of a server.
"""

from __future__ import annotations

import os

TICK = os.sysconf("SC_CLK_TCK")


def _table() -> dict[int, tuple[int, int]]:
    """{pid: (ppid, ticks)} of every process."""
    out: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    return out


def tree_pids(root: int, table: dict[int, tuple[int, int]] | None = None) -> list[int]:
    """root and its living descendants."""
    table = table if table is not None else _table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo, seen = [], [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def tree_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process tree."""
    table = _table()
    return {name: sum(table[p][1] for p in tree_pids(root, table)) / TICK for name, root in roots.items()}


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, everything but idle and iowait)."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return (sum(parts[:8]) - idle) / TICK


def tree_memory(root: int) -> dict[str, int]:
    """Bytes of RSS and PSS summed over a process tree (PSS splits shared pages, e.g. Postgres's shared
    buffers, between the processes mapping them, so its sum counts them once)."""
    rss = pss = 0
    pids = tree_pids(root)  # counted first: reading smaps of hundreds of backends takes seconds on a busy box
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return {"rss": rss, "pss": pss, "processes": len(pids)}
