"""Histories of checkpoint-store operations, and the model they are checked against (checker.py).

Recording: every invocation and completion of an operation is an ``Op``: the process that ran it, what it
was (``kind`` + ``args``), its start and end (``time.monotonic()``, comparable across processes on one host)
and its outcome:

  * ``ok``    it completed and took effect exactly as ``result`` says;
  * ``fail``  it definitely did not take effect (NOT_FOUND, ABORTED HEAD_MOVED / TARGET_NOT_EMPTY); the
              failure is still an observation (a NOT_FOUND load says the checkpoint was not there);
  * ``info``  indeterminate (UNAVAILABLE, DEADLINE_EXCEEDED, connection lost): it may or may not have taken
              effect, at any time after it began (Knossos' ``:info``: the end is taken as infinity), or
              before ``effect_by`` when that is known (the server answered UNAVAILABLE, or died).

A call that never left the client (gRPC "failed to connect to all addresses": no connection to send it on)
is recorded as ``fail`` with ``result == {"sent": False}`` and ignored by the checker.

The model, for the root namespace ("") of each thread: the ordered list of stored checkpoint ids (insertion
order; the last is the head) and, per checkpoint, the ids of the tasks whose writes are attached to it.
Operations and what they claim:

  save(cid, expected_head, expect_empty)  ok: cid appended (a compare-and-set held); fail ABORTED: the CAS did
                                          not hold and the head was ``current_head`` ("" = empty thread)
  load(cid=None)                          ok: the head (or cid) with exactly those writes; fail: absent/empty
  list                                    ok: every id, newest first (a prefix when ``truncated``)
  delete(cid), clear                      ok: gone (the server's counts are not checked)
  copy(source -> target)                  ok: target was empty and is now a copy of source (ids, order,
                                          writes); fail (TARGET_NOT_EMPTY) is not checked: it names nothing
                                          in the target, and such blind claims would keep the pruning of
                                          indeterminate ops below from being sound
  put_writes(cid, task)                   ok: task attached to cid; fail: cid absent

checker.py checks histories against this model.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "OK",
    "FAIL",
    "INFO",
    "KINDS",
    "READS",
    "Op",
    "Recorder",
    "State",
    "apply",
    "iter_ops",
    "short_id",
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
    effect_by: float | None = None  # info only: the op takes effect by this time or never (None: no bound)

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
        return short_id(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_short(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_short(x)}" for k, x in v.items()) + "}"
    return str(v)


def short_id(cid: str) -> str:
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

    def info(self, op: Op, error: str, effect_by: float | None = None) -> None:
        """Indeterminate. `effect_by`: when the server itself answered (or died), nothing of the op can happen
        after that answer; None when the server may still be acting on it (the client gave up waiting)."""
        op.end, op.outcome, op.error, op.effect_by = None, INFO, error, effect_by

    def unsent(self, op: Op, error: str) -> None:
        """The call never reached a server (no connection to send it on): it took no effect."""
        op.end, op.outcome, op.error, op.result = time.monotonic(), FAIL, error, {"sent": False}

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


def apply(state: State, op: Op, slot: dict[str, int]) -> State | None:
    """The state after `op` took effect with its recorded outcome, or None when that outcome is impossible
    in `state`. An ``info`` op is applied as if it succeeded with whatever result (None when it could not)."""
    t = slot[op.thread]
    entries = state[t]
    a, r = op.args, op.result
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
        if entries:
            return None
        return _replace(state, t, state[slot[a["source"]]])
    if op.kind == "put_writes":
        i = _find(entries, a["cid"])
        if op.outcome == FAIL:
            return state if i < 0 else None
        if i < 0:
            return None
        cid, tasks = entries[i]
        return _replace(state, t, entries[:i] + ((cid, tasks | {a["task"]}),) + entries[i + 1 :])
    raise ValueError(f"unknown op kind {op.kind!r}")


def iter_ops(paths: Iterable[str]) -> Iterator[Op]:
    """Ops from several JSON-lines files (one per client process)."""
    for p in paths:
        yield from Recorder.load(p)
