"""Linearizability checking of histories recorded by tests/harness/history.py (Knossos / Porcupine style).

Checking: a history is linearizable when every operation can be given one instant between its start and end
(for ``info``: any instant in its window, or none) at which the model, stepping through those instants in
order, accepts every result. This is stronger than "no read misses a change acknowledged before it began": a read
that misses a change which another op had already observed (say a CAS answered "the thread is empty" while
the Clear was still being acknowledged) is illegal too. Two searches decide it, and the tests hold them to the same verdicts:

  * "jit" (default): just-in-time linearization (Lowe, "Testing for linearizability", 2017) in one pass
    over the call and return events in time order, keeping every (model state, ops called but not yet
    linearized) a valid linearization can be in; a return forces its op in. Each anomaly is found at the
    exact return that leaves no configuration, and the cost grows with concurrency, not with length.
  * "wgl": the Wing & Gong / Lowe depth-first search as Porcupine does it: a doubly linked list of call and
    return events, "lift" a call whenever the model accepts it, backtrack at a return it cannot pass, and a
    cache of (set of linearized ops, model state) so no configuration is searched twice. Proving a long
    faulty history illegal can take it exponential time.

Bounds: operations on different threads commute, so the history is split per thread; a CopyThread joins its
two threads into one partition (keep copies within small groups of threads). A partition whose search goes
past ``max_steps`` model steps (or, for jit, ``max_configs`` configurations at once) gets the verdict
``unknown``, never a pass. Before searching, indeterminate operations whose effect nobody could have
observed are dropped or pinned (see ``_prune``); ``info_horizon_seconds`` optionally bounds how late an
indeterminate op without ``effect_by`` may take effect.

A partition that is not linearizable is reported as anomalies: the operation that could not be placed, what
it returned, a state the model could be in there, and the acknowledged operations that make the result
illegal (e.g. the delete that completed before the read began). The check then drops that operation (a read)
or makes it indeterminate (a write) and goes on, so one run reports up to ``max_anomalies`` per partition.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .history import FAIL, INFO, OK, READS, Op, State, short_id
from .history import apply as _apply

__all__ = ["Anomaly", "PartitionResult", "CheckResult", "check", "check_partition", "partitions"]

# --------------------------------------------------------------------------------------------------
# Partitioning and pruning
# --------------------------------------------------------------------------------------------------


def partitions(ops: Iterable[Op]) -> list[tuple[tuple[str, ...], list[Op]]]:
    """Split into independent sub-histories: threads joined by a copy share one. Sorted by thread names."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    ops = list(ops)
    for op in ops:
        first, *rest = op.threads
        for other in rest:
            parent[root(other)] = root(first)
        root(first)
    groups: dict[str, list[Op]] = {}
    members: dict[str, set[str]] = {}
    for op in ops:
        g = root(op.thread)
        groups.setdefault(g, []).append(op)
        members.setdefault(g, set()).update(op.threads)
    return sorted(((tuple(sorted(members[g])), groups[g]) for g in groups), key=lambda p: p[0])


def _observations(op: Op) -> set[str]:
    """Ids (checkpoints and tasks) whose presence this op's outcome depends on."""
    if op.outcome == INFO:
        return set()
    a, r = op.args, op.result
    seen: set[str] = set()
    if op.kind == "load" and op.outcome == OK:
        seen.add(r["cid"])
        seen.update(r.get("writes", ()))
    elif op.kind == "list" and op.outcome == OK:
        seen.update(r["cids"])
    elif op.kind == "save":
        if op.outcome == OK and a.get("expected_head"):
            seen.add(a["expected_head"])
        if op.outcome == FAIL and r.get("current_head"):
            seen.add(r["current_head"])
    elif op.kind == "put_writes" and op.outcome == OK:
        seen.add(a["cid"])
    return seen


def _blind(op: Op) -> bool:
    """An outcome that says "this thread is not empty" without naming what is in it."""
    if op.kind != "save" or op.outcome != FAIL or op.result.get("sent") is False:
        return False
    return "current_head" not in op.result or (bool(op.args.get("expect_empty")) and not op.result["current_head"])


def _pinned(op: Op, end: float) -> Op:
    return Op(op.process, op.kind, op.thread, dict(op.args), op.start, end, OK, {}, op.error, op.index)


def _prune(ops: list[Op]) -> list[Op]:
    """The ops the search needs, with indeterminate ones dropped or pinned where that cannot change the
    verdict (each open indeterminate op multiplies the configurations to search):

      * calls that never left the client, and copies that failed (see the module docstring): dropped;
      * an indeterminate read says nothing: dropped;
      * an indeterminate save (put_writes) whose checkpoint (task) id some op observed took effect before
        the first such observation completed: pinned as acknowledged, ending there;
      * one whose id no op ever observed: a checkpoint nobody saw can only make reads illegal (a head it
        would have replaced, a list it would be in), so "it never happened" is the best choice: dropped;
      * an indeterminate delete of a checkpoint nobody observed after the delete began: its absence can only
        help, so it is pinned as an acknowledged delete at its start.

    Dropping and pinning at the start are skipped when an op that only says "not empty" (a CAS failure
    without a current head) could depend on the checkpoint's presence.
    """
    seen_last: dict[str, float] = {}  # id -> latest end of an op observing it
    seen_first: dict[str, float] = {}  # id -> earliest end of an op observing it
    for op in ops:
        for x in _observations(op):
            end = op.end if op.end is not None else math.inf
            seen_last[x] = max(seen_last.get(x, -math.inf), end)
            seen_first[x] = min(seen_first.get(x, math.inf), end)
    blind_after = max((op.end for op in ops if _blind(op) and op.end is not None), default=-math.inf)
    out = []
    for op in ops:
        if op.result.get("sent") is False or (op.kind == "copy" and op.outcome == FAIL):
            continue
        if op.outcome != INFO:
            out.append(op)
            continue
        if op.kind in READS:
            continue
        key = op.args["task"] if op.kind == "put_writes" else op.args.get("cid", "")
        if op.kind in ("save", "put_writes"):
            if seen_first.get(key, -math.inf) >= op.start:
                out.append(_pinned(op, seen_first[key]))
                continue
            if key not in seen_last and op.start > blind_after:
                continue
        if op.kind == "delete" and seen_last.get(key, -math.inf) < op.start and op.start > blind_after:
            out.append(_pinned(op, op.start))
            continue
        out.append(op)
    return out


# --------------------------------------------------------------------------------------------------
# The search (WGL with Porcupine's cache)
# --------------------------------------------------------------------------------------------------


class _Node:
    __slots__ = ("op", "is_call", "match", "prev", "next", "id")

    def __init__(self, op: Op | None, is_call: bool, id_: int) -> None:
        self.op, self.is_call, self.id = op, is_call, id_
        self.match: _Node | None = None
        self.prev: _Node | None = None
        self.next: _Node | None = None


def _lift(n: _Node) -> None:
    n.prev.next = n.next  # type: ignore[union-attr]
    if n.next is not None:
        n.next.prev = n.prev
    m = n.match
    m.prev.next = m.next  # type: ignore[union-attr]
    if m.next is not None:
        m.next.prev = m.prev


def _unlift(n: _Node) -> None:
    m = n.match
    m.prev.next = m  # type: ignore[union-attr]
    if m.next is not None:
        m.next.prev = m
    n.prev.next = n  # type: ignore[union-attr]
    if n.next is not None:
        n.next.prev = n


@dataclass
class _Verdict:
    linearizable: bool | None  # None: gave up (too large)
    steps: int
    blocked: Op | None = None  # the op the longest partial linearization could not place
    state: State | None = None  # the model's state there


def _search(ops: Sequence[Op], init: State, slot: dict[str, int], max_steps: int,
            horizon: float | None = None) -> _Verdict:
    events: list[tuple[float, int, int]] = []
    for i, op in enumerate(ops):
        events.append((op.start, 0, i))
        end = op.end if op.end is not None else op.effect_by if op.effect_by is not None else (
            op.start + horizon if horizon is not None else math.inf)
        events.append((end, 1, i))
    events.sort()  # at equal times calls come first: touching intervals count as overlapping
    head = _Node(None, False, -1)
    calls: dict[int, _Node] = {}
    prev = head
    for _, kind, i in events:
        n = _Node(ops[i], kind == 0, i)
        if kind == 0:
            calls[i] = n
        else:
            n.match = calls[i]
            calls[i].match = n
        prev.next, n.prev = n, prev
        prev = n

    state = init
    linearized = 0
    remaining = sum(1 for op in ops if op.outcome != INFO)  # done when 0: left-over info ops never happened
    cache: set[tuple[int, State]] = set()
    stack: list[tuple[_Node, State]] = []
    best_depth = -1
    best: tuple[Op | None, State] = (None, init)
    entry = head.next
    steps = 0
    while remaining:
        steps += 1
        if steps > max_steps:
            return _Verdict(None, steps, best[0], best[1])
        assert entry is not None
        op = entry.op
        assert op is not None
        if entry.is_call:
            nxt = _apply(state, op, slot)
            if nxt is not None:
                lin = linearized | (1 << entry.id)
                key = (lin, nxt)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state, linearized = nxt, lin
                    remaining -= op.outcome != INFO
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if op.outcome == INFO:
                # the end of an indeterminate op's window: if it has not happened by now, it never does
                lin = linearized | (1 << entry.id)
                key = (lin, state)
                if key not in cache:
                    cache.add(key)
                    call = entry.match
                    assert call is not None
                    stack.append((call, state))
                    linearized = lin
                    _lift(call)
                    entry = head.next
                    continue
            elif len(stack) > best_depth:
                best_depth, best = len(stack), (op, state)
            if not stack:
                return _Verdict(False, steps, best[0], best[1])
            entry, state = stack.pop()  # a linearized call, or an indeterminate op given up at its window's end
            linearized &= ~(1 << entry.id)
            remaining += entry.op.outcome != INFO  # type: ignore[union-attr]
            _unlift(entry)
            entry = entry.next
    return _Verdict(True, steps)


# --------------------------------------------------------------------------------------------------
# Results and explanations
# --------------------------------------------------------------------------------------------------


@dataclass
class Anomaly:
    """One operation no linearization could place, with why."""

    threads: tuple[str, ...]
    op: Op
    allowed: str  # the model's state where the longest partial linearization stopped
    why: list[str]  # acknowledged ops that make the result illegal

    def describe(self) -> str:
        lines = [f"thread(s) {', '.join(self.threads)}: {self.op.describe()}"]
        lines.append(f"    model state: {self.allowed}")
        lines += [f"    because: {w}" for w in self.why[:6]]
        return "\n".join(lines)


@dataclass
class PartitionResult:
    threads: tuple[str, ...]
    ops: int
    searched_ops: int
    verdict: str  # "ok", "anomalies" or "unknown"
    steps: int
    anomalies: list[Anomaly] = field(default_factory=list)
    note: str = ""


@dataclass
class CheckResult:
    """valid: True (every partition linearizable), False (anomalies found) or None (a search gave up)."""

    partitions: list[PartitionResult]

    @property
    def anomalies(self) -> list[Anomaly]:
        return [a for p in self.partitions for a in p.anomalies]

    @property
    def valid(self) -> bool | None:
        if self.anomalies:
            return False
        if any(p.verdict == "unknown" for p in self.partitions):
            return None
        return True

    def describe_partitions(self) -> list[str]:
        """One line per partition: threads, ops, search steps, verdict."""
        return [f"  {','.join(p.threads)}: {p.ops} ops ({p.searched_ops} searched), {p.steps} steps: "
                f"{p.verdict}{' (' + p.note + ')' if p.note else ''}" for p in self.partitions]

    def describe(self) -> str:
        """The partition lines, then every anomaly."""
        return "\n".join(self.describe_partitions() + [a.describe() for a in self.anomalies])


def _show_state(state: State, threads: Sequence[str]) -> str:
    parts = []
    for name, entries in zip(threads, state):
        ids = [(short_id(c) + ("+" + ",".join(sorted(short_id(t) for t in w)) if w else "")) for c, w in entries]
        parts.append(f"{name}=[{' '.join(ids)}]" + (" (head last)" if len(ids) > 1 else ""))
    return "; ".join(parts)


def _why(op: Op, ops: Sequence[Op], state: State, threads: Sequence[str]) -> list[str]:
    """Acknowledged ops, completed before `op` began, that its result contradicts, read off the model's
    `state` where the check stopped (a readable reason; the verdict itself is the search's)."""
    entries = state[list(threads).index(op.thread)]
    ids = [c for c, _ in entries]
    done = [o for o in ops if o.outcome == OK and o.end is not None and o.end < op.start and op.thread in o.threads]

    def made(cid: str) -> str:
        for o in reversed(done):
            if (o.kind == "save" and o.args["cid"] == cid and o.thread == op.thread) or (
                    o.kind == "copy" and o.thread == op.thread):
                return o.describe()
        return "(its save completed after this op began, or was indeterminate)"

    def removed(cid: str) -> str:
        present = max((o.end for o in done if o.thread == op.thread and (  # type: ignore[type-var]
            cid in _observations(o) or (o.kind == "save" and o.args["cid"] == cid))), default=-math.inf)
        gone = [o for o in done if o.thread == op.thread and o.start > present and (
            o.kind == "clear" or (o.kind == "delete" and o.args["cid"] == cid))]
        if gone:
            return f"{short_id(cid)} was {'cleared' if gone[0].kind == 'clear' else 'deleted'} by {gone[0].describe()}"
        return f"{short_id(cid)} is not in the thread in any order of the ops around it"

    out: list[str] = []
    r = op.result
    if op.kind == "load" and op.outcome == OK:
        cid = r["cid"]
        if cid not in ids:
            out.append(removed(cid))
        elif not op.args.get("cid") and ids[-1] != cid:
            out += [f"newer head {short_id(n)}: {made(n)}" for n in ids[ids.index(cid) + 1:]][-3:]
        else:
            want = entries[ids.index(cid)][1]
            out += [f"writes missing: {o.describe()}" for o in done
                    if o.kind == "put_writes" and o.args["task"] in want - set(r.get("writes", ()))]
    elif op.kind == "load" and op.outcome == FAIL:
        cid = op.args.get("cid") or (ids[-1] if ids else None)
        if cid:
            out.append(f"{short_id(cid)} is stored: {made(cid)}")
    elif op.kind == "list" and op.outcome == OK:
        got = list(r["cids"])
        out += [removed(c) for c in got if c not in ids]
        out += [f"acknowledged save missing: {made(c)}" for c in ids if c not in got and not r.get("truncated")]
        if not out:
            out.append(f"order differs: returned {[short_id(c) for c in got]}, stored newest first {[short_id(c) for c in ids[::-1]]}")
    elif op.kind == "save" and op.outcome == OK:
        out.append(f"the head was {short_id(ids[-1]) if ids else '(empty)'}")
    elif op.kind == "save" and op.outcome == FAIL:
        out.append(f"the head was {short_id(ids[-1]) + ': ' + made(ids[-1]) if ids else '(empty)'}")
    elif op.kind == "put_writes" and op.outcome == FAIL and op.args["cid"] in ids:
        out.append(f"{short_id(op.args['cid'])} is stored: {made(op.args['cid'])}")
    return out[:6]


def _demote(op: Op) -> Op | None:
    """After an anomaly: reads are dropped, writes become indeterminate, so the search can go on."""
    if op.kind in READS or op.outcome == FAIL:
        return None
    return Op(op.process, op.kind, op.thread, dict(op.args), op.start, None, INFO, {}, "demoted", op.index)


def _window_end(op: Op, horizon: float | None) -> float:
    if op.end is not None:
        return op.end
    if op.effect_by is not None:
        return op.effect_by
    return op.start + horizon if horizon is not None else math.inf


Config = tuple[State, frozenset[int]]  # the model's state, and the ops called but not yet linearized


class _TooLarge(Exception):
    pass


def _jit(ops: Sequence[Op], init: State, slot: dict[str, int], threads: tuple[str, ...], result: PartitionResult,
         *, max_steps: int, max_configs: int, max_anomalies: int, horizon: float | None) -> None:
    """Just-in-time linearization (Lowe, "Testing for linearizability", 2017), breadth first over time.

    Events in time order; the configurations are every (state, pending ops) some valid linearization of the
    history so far can be in. A call adds the op to every configuration's pending set. At an op's return
    each configuration linearizes some pending ops, in any order, ending with that op (configurations that
    linearized it earlier stay as they are). An indeterminate op's window end is a return where it may also
    be dropped (it never happened). A return that leaves no configuration is an anomaly, found at the exact
    event; the op is then dropped (a read) or made optional (a write) and the check goes on.
    """
    events: list[tuple[float, int, int]] = []
    for i, op in enumerate(ops):
        events.append((op.start, 0, i))
        end = _window_end(op, horizon)
        if end != math.inf:
            events.append((end, 1, i))
    events.sort()  # at equal times calls come first: touching intervals count as overlapping
    configs: set[Config] = {(init, frozenset())}
    steps = 0

    def close(configs: set[Config], j: int, optional: bool) -> set[Config]:
        nonlocal steps
        out: set[Config] = set()
        for state, pending in configs:
            if j not in pending:
                out.add((state, pending))
                continue
            if optional:
                out.add((state, pending - {j}))
            seen = {(state, pending)}
            todo = [(state, pending)]
            while todo:
                st, pend = todo.pop()
                if steps > max_steps:
                    raise _TooLarge(f"stopped after {steps} steps (max_steps={max_steps})")
                for k in pend:
                    steps += 1
                    n = _apply(st, ops[k], slot)
                    if n is None:
                        continue
                    rest = pend - {k}
                    if k == j:
                        out.add((n, rest))
                    elif (n, rest) not in seen:
                        seen.add((n, rest))
                        todo.append((n, rest))
        return out

    try:
        for when, kind, i in events:
            if kind == 0:
                configs = {(st, pend | {i}) for st, pend in configs}
                continue
            op = ops[i]
            after = close(configs, i, op.outcome == INFO)
            if not after:
                state = next(iter(configs))[0]
                result.anomalies.append(Anomaly(threads, op, _show_state(state, threads),
                                                _why(op, ops, state, threads)))
                if len(result.anomalies) >= max_anomalies:
                    result.note = f"stopped after {len(result.anomalies)} anomalies"
                    break
                # go on as if the op were a read never made (dropped) or a write of unknown outcome
                after = close(configs, i, True) if op.kind not in READS else {
                    (st, pend - {i}) for st, pend in configs}
            configs = after
            if len(configs) > max_configs:
                raise _TooLarge(f"{len(configs)} configurations at t={when:.3f} (max_configs={max_configs})")
    except _TooLarge as e:
        result.verdict = "unknown"
        result.note = f"search too large to decide: {e}"
    result.steps += steps
    if result.anomalies:
        result.verdict = "anomalies"


def check_partition(
    threads: tuple[str, ...], ops: Sequence[Op], *, max_steps: int = 2_000_000, max_anomalies: int = 10,
    info_horizon_seconds: float | None = None, algorithm: str = "jit", max_configs: int = 20_000,
) -> PartitionResult:
    """Check one partition (all ops on `threads`, starting from empty threads). See ``check``."""
    slot = {t: i for i, t in enumerate(threads)}
    init: State = tuple(() for _ in threads)
    todo = _prune(sorted(ops, key=lambda o: o.start))
    result = PartitionResult(threads, len(ops), len(todo), "ok", 0)
    if algorithm == "jit":
        _jit(todo, init, slot, threads, result, max_steps=max_steps, max_configs=max_configs,
             max_anomalies=max_anomalies, horizon=info_horizon_seconds)
        return result
    if algorithm != "wgl":
        raise ValueError(f"algorithm must be 'jit' or 'wgl', got {algorithm!r}")
    budget = max_steps
    while True:
        v = _search(todo, init, slot, budget, info_horizon_seconds)
        result.steps += v.steps
        budget -= v.steps
        if v.linearizable is True:
            break
        if v.linearizable is None:
            result.verdict = "unknown"
            result.note = f"search stopped after {result.steps} steps (max_steps={max_steps}): too large to decide"
            break
        blocked = v.blocked
        assert blocked is not None
        assert v.state is not None
        result.anomalies.append(Anomaly(threads, blocked, _show_state(v.state, threads),
                                        _why(blocked, ops, v.state, threads)))
        result.verdict = "anomalies"
        if len(result.anomalies) >= max_anomalies or budget <= 0:
            result.note = f"stopped after {len(result.anomalies)} anomalies"
            break
        replacement = _demote(blocked)
        todo = [replacement if (o is blocked and replacement) else o for o in todo if o is not blocked or replacement]
    return result


def check(ops: Iterable[Op], *, max_steps: int = 2_000_000, max_anomalies: int = 10,
          info_horizon_seconds: float | None = None, algorithm: str = "jit", max_configs: int = 20_000,
          ) -> CheckResult:
    """Check a whole history: each partition separately, each bounded by `max_steps` model steps (and, for
    "jit", `max_configs` configurations at once); past a bound a partition's verdict is "unknown".

    algorithm: "jit" (default; one pass in time order, finds each anomaly at the exact return that makes it
    illegal, cost grows with concurrency rather than length) or "wgl" (the Wing & Gong / Lowe depth-first
    search with Porcupine's cache; proving a long history illegal can take exponential time). Both give the
    same verdicts; the tests run both.

    info_horizon_seconds: None (sound) lets an indeterminate op without ``effect_by`` take effect at any time
    after it began. A number assumes it takes effect within that many seconds of its start or never, which
    keeps the search of a long faulty history tractable; pick it well above the longest time a server may
    still act on a call (client deadline, server pause, cold-store timeout)."""
    return CheckResult([
        check_partition(threads, part, max_steps=max_steps, max_anomalies=max_anomalies,
                        info_horizon_seconds=info_horizon_seconds, algorithm=algorithm, max_configs=max_configs)
        for threads, part in partitions(ops)
    ])
