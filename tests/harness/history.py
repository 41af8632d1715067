"""Histories of checkpoint-store operations and a linearizability checker for them (Knossos / Porcupine style).

Recording: every invocation and completion of an operation is an ``Op``: the process that ran it, what it
was (``kind`` + ``args``), its start and end (``time.monotonic()``, comparable across processes on one host)
and its outcome:

  * ``ok``    it completed and took effect exactly as ``result`` says;
  * ``fail``  it definitely did not take effect (NOT_FOUND, ABORTED HEAD_MOVED / TARGET_NOT_EMPTY); the
              failure is still an observation (a NOT_FOUND load says the checkpoint was not there);
  * ``info``  indeterminate (UNAVAILABLE, DEADLINE_EXCEEDED, connection lost): it may or may not have taken
              effect, at any time after it began (Knossos' ``:info``: the end is taken as infinity).

The model, for the root namespace ("") of each thread: the ordered list of stored checkpoint ids (insertion
order; the last is the head) and, per checkpoint, the ids of the tasks whose writes are attached to it.
Operations and what they claim:

  save(cid, expected_head, expect_empty)  ok: cid appended (a compare-and-set held); fail ABORTED: the CAS did
                                          not hold and the head was ``current_head`` ("" = empty thread)
  load(cid=None)                          ok: the head (or cid) with exactly those writes; fail: absent/empty
  list                                    ok: every id, newest first (a prefix when ``truncated``)
  delete(cid), clear                      ok: gone (the server's counts are not checked)
  copy(source -> target)                  ok: target was empty and is now a copy of source (ids, order,
                                          writes); fail: target was not empty
  put_writes(cid, task)                   ok: task attached to cid; fail: cid absent

Checking: a history is linearizable when every operation can be given one instant between its start and end
(any instant after its start for ``info``) at which the model, stepping through those instants in order,
accepts every result. This is the Wing & Gong / Lowe search as Porcupine does it: a doubly linked list of
call and return events, a depth-first search that "lifts" a call whenever the model accepts it, backtracks at
a return event it cannot pass, and a cache of (set of linearized ops, model state) so no configuration is
searched twice. Indeterminate ops make the model nondeterministic (happened or not), handled as Porcupine's
NondeterministicModel does: the search state is the set of possible model states.

Bounds: operations on different threads commute, so the history is split per thread; a CopyThread joins its
two threads into one partition (keep copies within small groups of threads). Each partition's search stops
after ``max_steps`` steps with the verdict ``unknown`` (never a false pass). Before searching, indeterminate
operations whose effect nobody could have observed are dropped or pinned (see ``_prune_indeterminate``).

A partition that is not linearizable is reported as anomalies: the operation the longest partial
linearization could not place, what it returned, the states the model allowed, and the acknowledged
operations that make the result illegal (e.g. the delete that completed before the read began). The search
then drops that operation (a read) or makes it indeterminate (a write) and goes on, so one run reports up to
``max_anomalies`` per partition.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "OK",
    "FAIL",
    "INFO",
    "Op",
    "Recorder",
    "Anomaly",
    "PartitionResult",
    "CheckResult",
    "check",
    "partitions",
]

OK = "ok"
FAIL = "fail"
INFO = "info"

KINDS = ("save", "load", "list", "delete", "clear", "copy", "put_writes")
READS = ("load", "list")


@dataclass
class Op:
    """One invocation and (unless ``info``) its completion. ``thread`` is the thread the op acts on (for a copy,
    the target; the source is ``args['source']``)."""

    process: str
    kind: str
    thread: str
    args: dict[str, Any]
    start: float
    end: float | None = None
    outcome: str = INFO
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    index: int = -1

    @property
    def threads(self) -> tuple[str, ...]:
        """Every thread the op touches."""
        return (self.args["source"], self.thread) if self.kind == "copy" else (self.thread,)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Op:
        return cls(**d)

    def describe(self) -> str:
        """One line: process, op, its arguments, outcome and result, and its interval."""
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.args.items() if v not in (None, False, ""))
        what = f"{self.kind}({self.thread}{', ' + args if args else ''})"
        if self.outcome == OK:
            res = " ".join(f"{k}={_short(v)}" for k, v in self.result.items()) or "ok"
        elif self.outcome == FAIL:
            res = f"FAILED {self.error}" + (f" {_short(self.result)}" if self.result else "")
        else:
            res = f"INDETERMINATE {self.error}"
        end = "∞" if self.end is None else f"{self.end:.4f}"
        return f"#{self.index} {self.process} {what} -> {res} [{self.start:.4f}, {end}]"


def _short(v: Any) -> str:
    if isinstance(v, str):
        return _sid(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_short(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_short(x)}" for k, x in v.items()) + "}"
    return str(v)


def _sid(cid: str) -> str:
    """Checkpoint ids are UUIDv7: the last 8 characters are random and tell them apart in a report."""
    return cid[-8:] if len(cid) > 12 else cid


class Recorder:
    """Thread-safe log of Ops. ``invoke`` stamps the start, ``ok``/``fail``/``info`` the end and outcome."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ops: list[Op] = []

    def invoke(self, process: str, kind: str, thread: str, **args: Any) -> Op:
        if kind not in KINDS:
            raise ValueError(f"unknown op kind {kind!r}; expected one of {KINDS}")
        op = Op(process, kind, thread, args, time.monotonic())
        with self._lock:
            op.index = len(self.ops)
            self.ops.append(op)
        return op

    def ok(self, op: Op, **result: Any) -> None:
        op.end, op.outcome, op.result = time.monotonic(), OK, result

    def fail(self, op: Op, error: str, **result: Any) -> None:
        op.end, op.outcome, op.error, op.result = time.monotonic(), FAIL, error, result

    def info(self, op: Op, error: str) -> None:
        op.end, op.outcome, op.error = None, INFO, error

    def dump(self, path: str) -> None:
        """Write the ops as JSON lines."""
        with open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(op.to_json()) + "\n")

    @staticmethod
    def load(path: str) -> list[Op]:
        with open(path) as f:
            return [Op.from_json(json.loads(line)) for line in f if line.strip()]


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------

# A partition's state: one entry per thread (in the partition's thread order), each a tuple of
# (checkpoint id, frozenset of task ids) in insertion order; the last entry is the head.
Entries = tuple[tuple[str, frozenset[str]], ...]
State = tuple[Entries, ...]


def _ids(entries: Entries) -> list[str]:
    return [cid for cid, _ in entries]


def _find(entries: Entries, cid: str) -> int:
    for i, (c, _) in enumerate(entries):
        if c == cid:
            return i
    return -1


def _replace(state: State, t: int, entries: Entries) -> State:
    return state[:t] + (entries,) + state[t + 1 :]


def _cas_holds(entries: Entries, args: dict[str, Any]) -> bool:
    if args.get("expect_empty"):
        return not entries
    expected = args.get("expected_head")
    if expected:
        return bool(entries) and entries[-1][0] == expected
    return True


def _apply(state: State, op: Op, slot: dict[str, int]) -> State | None:
    """The state after `op` took effect with its recorded outcome, or None when that outcome is impossible
    in `state`. An ``info`` op is applied as if it succeeded with whatever result."""
    t = slot[op.thread]
    entries = state[t]
    a, r = op.args, op.result
    indeterminate = op.outcome == INFO
    if op.kind == "save":
        cid = a["cid"]
        if _find(entries, cid) >= 0:  # an identical re-save: acknowledged, nothing changes
            return state if op.outcome != FAIL else None
        holds = _cas_holds(entries, a)
        if op.outcome == FAIL:
            if holds:
                return None
            if "current_head" in r:
                head = entries[-1][0] if entries else ""
                if r["current_head"] and head != r["current_head"]:
                    return None
                if not r["current_head"] and entries and not a.get("expect_empty"):
                    return None
            return state
        if not holds:
            return None
        return _replace(state, t, entries + ((cid, frozenset()),))
    if op.kind == "load":
        cid = a.get("cid")
        i = (len(entries) - 1 if entries else -1) if not cid else _find(entries, cid)
        if op.outcome == FAIL:
            return state if i < 0 else None
        if i < 0 or entries[i][0] != r["cid"] or entries[i][1] != frozenset(r.get("writes", ())):
            return None
        return state
    if op.kind == "list":
        want = _ids(entries)[::-1]
        got = list(r["cids"])
        if r.get("truncated"):
            return state if want[: len(got)] == got else None
        return state if want == got else None
    if op.kind == "delete":
        if op.outcome == FAIL:
            return state
        i = _find(entries, a["cid"])
        return state if i < 0 else _replace(state, t, entries[:i] + entries[i + 1 :])
    if op.kind == "clear":
        return state if op.outcome == FAIL else _replace(state, t, ())
    if op.kind == "copy":
        if op.outcome == FAIL:
            return state if entries else None
        if entries:
            return None
        return _replace(state, t, state[slot[a["source"]]])
    if op.kind == "put_writes":
        i = _find(entries, a["cid"])
        if op.outcome == FAIL:
            return state if i < 0 else None
        if i < 0:
            return None if not indeterminate else state
        cid, tasks = entries[i]
        return _replace(state, t, entries[:i] + ((cid, tasks | {a["task"]}),) + entries[i + 1 :])
    raise ValueError(f"unknown op kind {op.kind!r}")


def _step(states: frozenset[State], op: Op, slot: dict[str, int]) -> frozenset[State]:
    """Porcupine's nondeterministic step: every state reachable from any of `states`; empty = illegal."""
    out = set()
    for s in states:
        if op.outcome == INFO:
            out.add(s)  # it never took effect
        n = _apply(s, op, slot)
        if n is not None:
            out.add(n)
    return frozenset(out)


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
    if op.kind == "copy" and op.outcome == FAIL:
        return True
    return op.kind == "save" and op.outcome == FAIL and not op.result.get("current_head")


def _prune_indeterminate(ops: list[Op]) -> list[Op]:
    """Drop or pin indeterminate ops that cannot matter, to keep the search small (each open ``info`` write
    multiplies the configurations). Sound because each rewrite leaves every other op at least as legal:

      * an indeterminate read says nothing: dropped;
      * an indeterminate save (or put_writes) whose checkpoint (task) id no op ever observed: a checkpoint
        nobody saw can only make later reads illegal (a head it would have replaced, a list it would be in),
        so "it never happened" is the best choice: dropped;
      * an indeterminate delete of a checkpoint nobody observed after the delete began: its absence can only
        help, so it is pinned as an acknowledged delete at its start.

    Neither rewrite is made when an op that only says "not empty" (a copy's TARGET_NOT_EMPTY) could depend
    on the checkpoint's presence.
    """
    seen_at: dict[str, float] = {}  # id -> latest end of an op observing it
    for op in ops:
        for x in _observations(op):
            seen_at[x] = max(seen_at.get(x, -math.inf), op.end if op.end is not None else math.inf)
    blind_after = max((op.end for op in ops if _blind(op) and op.end is not None), default=-math.inf)
    out = []
    for op in ops:
        if op.outcome != INFO:
            out.append(op)
            continue
        if op.kind in READS:
            continue
        unseen_after_start = op.start > blind_after
        if op.kind == "save" and op.args["cid"] not in seen_at and unseen_after_start:
            continue
        if op.kind == "put_writes" and op.args["task"] not in seen_at and unseen_after_start:
            continue
        if op.kind == "delete" and seen_at.get(op.args["cid"], -math.inf) < op.start and unseen_after_start:
            pinned = Op(op.process, op.kind, op.thread, dict(op.args), op.start, op.start, OK, {}, op.error, op.index)
            out.append(pinned)
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
    states: frozenset[State] = frozenset()  # the possible states there


def _search(ops: Sequence[Op], init: frozenset[State], slot: dict[str, int], max_steps: int) -> _Verdict:
    events: list[tuple[float, int, int]] = []
    for i, op in enumerate(ops):
        events.append((op.start, 0, i))
        events.append((op.end if op.end is not None else math.inf, 1, i))
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
    cache: set[tuple[int, frozenset[State]]] = set()
    stack: list[tuple[_Node, frozenset[State]]] = []
    best_depth = -1
    best: tuple[Op | None, frozenset[State]] = (None, init)
    entry = head.next
    steps = 0
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            return _Verdict(None, steps, best[0], best[1])
        assert entry is not None
        if entry.is_call:
            nxt = _step(state, entry.op, slot)  # type: ignore[arg-type]
            if nxt:
                lin = linearized | (1 << entry.id)
                key = (lin, nxt)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state, linearized = nxt, lin
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if len(stack) > best_depth:
                best_depth, best = len(stack), (entry.op, state)
            if not stack:
                return _Verdict(False, steps, best[0], best[1])
            entry, state = stack.pop()
            linearized &= ~(1 << entry.id)
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
    allowed: list[str]  # what the model allowed when the op had to take effect, one line per possible state
    why: list[str]  # acknowledged ops that make the result illegal

    def describe(self) -> str:
        lines = [f"thread(s) {', '.join(self.threads)}: {self.op.describe()}"]
        lines += [f"    model allowed: {a}" for a in self.allowed[:4]]
        if len(self.allowed) > 4:
            lines.append(f"    ... and {len(self.allowed) - 4} more possible states")
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

    def describe(self) -> str:
        lines = []
        for p in self.partitions:
            lines.append(f"  {','.join(p.threads)}: {p.ops} ops ({p.searched_ops} searched), {p.steps} steps: "
                         f"{p.verdict}{' (' + p.note + ')' if p.note else ''}")
        for a in self.anomalies:
            lines.append(a.describe())
        return "\n".join(lines)


def _show_state(state: State, threads: Sequence[str]) -> str:
    parts = []
    for name, entries in zip(threads, state):
        ids = [(_sid(c) + ("+" + ",".join(sorted(_sid(t) for t in w)) if w else "")) for c, w in entries]
        parts.append(f"{name}=[{' '.join(ids)}]" + (" (head last)" if len(ids) > 1 else ""))
    return "; ".join(parts)


def _why(op: Op, ops: Sequence[Op]) -> list[str]:
    """Acknowledged ops completed before `op` began that its result contradicts (a readable reason; the
    verdict itself is the search's)."""
    before = [o for o in ops if o.outcome == OK and o.end is not None and o.end < op.start and op.thread in o.threads]
    before.sort(key=lambda o: o.end)  # type: ignore[arg-type,return-value]
    out: list[str] = []
    returned: list[str] = []
    if op.outcome == OK and op.kind == "load":
        returned = [op.result["cid"]]
    elif op.outcome == OK and op.kind == "list":
        returned = list(op.result["cids"])
    for cid in returned:
        saved = [o for o in before if o.kind == "save" and o.args["cid"] == cid and o.thread == op.thread]
        after = [o for o in before if not saved or o.start > saved[-1].end]  # type: ignore[operator]
        for o in after:
            if o.kind == "delete" and o.args["cid"] == cid and o.thread == op.thread:
                out.append(f"{_sid(cid)} was deleted by {o.describe()}")
            elif o.kind == "clear" and o.thread == op.thread:
                out.append(f"{_sid(cid)} was cleared by {o.describe()}")
        if op.kind == "load" and not op.args.get("cid") and saved:
            newer = [o for o in after if o.kind == "save" and o.thread == op.thread]
            if newer:
                out.append(f"head {_sid(cid)} was replaced by {newer[-1].describe()}")
    if op.kind == "load" and op.outcome == OK:
        missing = [o for o in before if o.kind == "put_writes" and o.args["cid"] == op.result["cid"]
                   and o.args["task"] not in op.result.get("writes", ())]
        out += [f"writes missing: {o.describe()}" for o in missing]
    if op.outcome == FAIL or op.kind == "list":
        saves = [o for o in before if o.kind == "save" and o.thread == op.thread]
        if op.kind == "load" and op.outcome == FAIL and not op.args.get("cid") and saves:
            out.append(f"the thread held acknowledged saves, e.g. {saves[-1].describe()}")
        if op.kind == "list":
            for o in saves:
                if o.args["cid"] not in returned and not any(
                    d.kind in ("delete", "clear") and d.start > o.start
                    and (d.kind == "clear" or d.args["cid"] == o.args["cid"]) for d in ops if d.thread == op.thread
                ):
                    out.append(f"acknowledged save missing: {o.describe()}")
    return out


def _demote(op: Op) -> Op | None:
    """After an anomaly: reads are dropped, writes become indeterminate, so the search can go on."""
    if op.kind in READS or op.outcome == FAIL:
        return None
    return Op(op.process, op.kind, op.thread, dict(op.args), op.start, None, INFO, {}, "demoted", op.index)


def check_partition(
    threads: tuple[str, ...], ops: Sequence[Op], *, max_steps: int = 2_000_000, max_anomalies: int = 10
) -> PartitionResult:
    """Check one partition (all ops on `threads`, starting from empty threads)."""
    slot = {t: i for i, t in enumerate(threads)}
    init = frozenset({tuple(() for _ in threads)})
    todo = _prune_indeterminate(sorted(ops, key=lambda o: o.start))
    result = PartitionResult(threads, len(ops), len(todo), "ok", 0)
    budget = max_steps
    while True:
        v = _search(todo, init, slot, budget)
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
        allowed = sorted(_show_state(s, threads) for s in v.states)
        result.anomalies.append(Anomaly(threads, blocked, allowed, _why(blocked, ops)))
        result.verdict = "anomalies"
        if len(result.anomalies) >= max_anomalies or budget <= 0:
            result.note = f"stopped after {len(result.anomalies)} anomalies"
            break
        replacement = _demote(blocked)
        todo = [replacement if (o is blocked and replacement) else o for o in todo if o is not blocked or replacement]
    return result


def check(ops: Iterable[Op], *, max_steps: int = 2_000_000, max_anomalies: int = 10) -> CheckResult:
    """Check a whole history: each partition separately, each search bounded by `max_steps`."""
    return CheckResult([
        check_partition(threads, part, max_steps=max_steps, max_anomalies=max_anomalies)
        for threads, part in partitions(ops)
    ])


def iter_ops(paths: Iterable[str]) -> Iterator[Op]:
    """Ops from several JSON-lines files (one per client process)."""
    for p in paths:
        yield from Recorder.load(p)
