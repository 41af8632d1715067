"""The history checker (tests/harness/history.py) on hand-made histories: legal ones must pass, and each kind
of anomaly the coherence run looks for must be caught, so the checker cannot pass everything."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.checker import check, partitions
from tests.harness.history import FAIL, INFO, OK, Op

_ALGORITHM = ["jit"]


@pytest.fixture(autouse=True, params=["jit", "wgl"])
def algorithm(request: pytest.FixtureRequest) -> str:
    """Every test runs against both search algorithms: they must agree."""
    _ALGORITHM[0] = request.param
    return request.param


class H:
    """Builds a history: h.ok("p1", "save", "t", 0, 1, cid="a") adds an op running from t=0 to t=1."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def _add(self, process: str, kind: str, thread: str, start: float, end: float | None, outcome: str,
             args: dict[str, Any], result: dict[str, Any], error: str = "") -> Op:
        op = Op(process, kind, thread, args, start, end, outcome, result, error, len(self.ops))
        self.ops.append(op)
        return op

    def save(self, p: str, t: str, s: float, e: float | None, cid: str, outcome: str = OK, **kw: Any) -> Op:
        result = {"current_head": kw.pop("current_head")} if "current_head" in kw else {}
        args = {"cid": cid, "expected_head": kw.pop("expected_head", None), "expect_empty": kw.pop("expect_empty", False)}
        return self._add(p, "save", t, s, e, outcome, args, result, "ABORTED" if outcome == FAIL else "")

    def head(self, p: str, t: str, s: float, e: float, cid: str | None, writes: tuple[str, ...] = ()) -> Op:
        if cid is None:
            return self._add(p, "load", t, s, e, FAIL, {"cid": None}, {}, "NOT_FOUND")
        return self._add(p, "load", t, s, e, OK, {"cid": None}, {"cid": cid, "writes": list(writes)})

    def get(self, p: str, t: str, s: float, e: float, cid: str, found: bool, writes: tuple[str, ...] = ()) -> Op:
        if not found:
            return self._add(p, "load", t, s, e, FAIL, {"cid": cid}, {}, "NOT_FOUND")
        return self._add(p, "load", t, s, e, OK, {"cid": cid}, {"cid": cid, "writes": list(writes)})

    def list(self, p: str, t: str, s: float, e: float, cids: list[str], truncated: bool = False) -> Op:
        return self._add(p, "list", t, s, e, OK, {}, {"cids": cids, "truncated": truncated})

    def delete(self, p: str, t: str, s: float, e: float | None, cid: str, outcome: str = OK) -> Op:
        return self._add(p, "delete", t, s, e, outcome, {"cid": cid}, {})

    def unsent(self, p: str, t: str, s: float, cid: str) -> Op:
        return self._add(p, "save", t, s, s + 0.1, FAIL, {"cid": cid, "expected_head": None, "expect_empty": False},
                         {"sent": False}, "UNAVAILABLE failed to connect to all addresses")

    def clear(self, p: str, t: str, s: float, e: float | None, outcome: str = OK) -> Op:
        return self._add(p, "clear", t, s, e, outcome, {}, {})

    def copy(self, p: str, src: str, dst: str, s: float, e: float | None, outcome: str = OK) -> Op:
        return self._add(p, "copy", dst, s, e, outcome, {"source": src}, {},
                         "ABORTED TARGET_NOT_EMPTY" if outcome == FAIL else "")

    def writes(self, p: str, t: str, s: float, e: float | None, cid: str, task: str, outcome: str = OK) -> Op:
        return self._add(p, "put_writes", t, s, e, outcome, {"cid": cid, "task": task}, {},
                         "NOT_FOUND" if outcome == FAIL else "")


def _valid(h: H) -> bool | None:
    return check(h.ops, max_steps=200_000, algorithm=_ALGORITHM[0]).valid


def _anomaly_ops(h: H) -> list[int]:
    return [a.op.index for a in check(h.ops, max_steps=200_000, algorithm=_ALGORITHM[0]).anomalies]


# ---- legal histories ---------------------------------------------------------------------------------


def test_sequential_history_is_legal() -> None:
    h = H()
    h.head("p1", "t", 0, 1, None)
    h.save("p1", "t", 2, 3, "a")
    h.save("p1", "t", 4, 5, "b", expected_head="a")
    h.head("p2", "t", 6, 7, "b")
    h.get("p2", "t", 8, 9, "a", True)
    h.list("p1", "t", 10, 11, ["b", "a"])
    h.writes("p1", "t", 12, 13, "b", "task1")
    h.head("p2", "t", 14, 15, "b", writes=("task1",))
    h.delete("p1", "t", 16, 17, "b")
    h.head("p2", "t", 18, 19, "a")
    h.save("p1", "t", 20, 21, "c", expected_head="b", outcome=FAIL, current_head="a")
    h.clear("p1", "t", 22, 23)
    h.head("p2", "t", 24, 25, None)
    h.save("p1", "t", 26, 27, "d", expect_empty=True)
    assert _valid(h) is True


def test_concurrent_overlapping_ops_may_be_ordered_either_way() -> None:
    h = H()
    h.save("p1", "t", 0, 10, "a")
    h.save("p2", "t", 1, 9, "b")
    h.head("p3", "t", 2, 3, "b")  # b took effect first ...
    h.head("p4", "t", 11, 12, "a")  # ... then a
    h.list("p3", "t", 13, 14, ["a", "b"])
    assert _valid(h) is True


def test_read_concurrent_with_delete_may_see_either() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.delete("p1", "t", 2, 10, "a")
    h.get("p2", "t", 3, 4, "a", True)
    h.get("p3", "t", 5, 6, "a", False)
    h.get("p4", "t", 11, 12, "a", False)
    assert _valid(h) is True


def test_indeterminate_save_may_have_taken_effect_late() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.save("p2", "t", 2, None, "b", outcome=INFO)  # timed out
    h.head("p3", "t", 3, 4, "a")  # not yet
    h.head("p3", "t", 5, 6, "b")  # now it has
    h.head("p3", "t", 7, 8, "b")
    assert _valid(h) is True


def test_indeterminate_save_may_never_take_effect() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.save("p2", "t", 2, None, "b", outcome=INFO)
    h.head("p3", "t", 30, 31, "a")
    assert _valid(h) is True


def test_indeterminate_clear_explains_an_empty_thread() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.clear("p2", "t", 2, None, outcome=INFO)
    h.head("p3", "t", 10, 11, None)
    assert _valid(h) is True


def test_cas_one_winner_is_legal() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.save("p2", "t", 2, 5, "b", expected_head="a")
    h.save("p3", "t", 2, 5, "c", expected_head="a", outcome=FAIL, current_head="b")
    h.head("p1", "t", 6, 7, "b")
    assert _valid(h) is True


def test_copy_into_empty_thread_keeps_ids_order_and_writes() -> None:
    h = H()
    h.save("p1", "s", 0, 1, "a")
    h.save("p1", "s", 2, 3, "b")
    h.writes("p1", "s", 4, 5, "b", "w1")
    h.copy("p2", "s", "d", 6, 7)
    h.list("p3", "d", 8, 9, ["b", "a"])
    h.head("p3", "d", 10, 11, "b", writes=("w1",))
    h.copy("p2", "s", "d", 12, 13, outcome=FAIL)  # target not empty now
    h.delete("p1", "d", 14, 15, "b")
    h.head("p3", "s", 16, 17, "b", writes=("w1",))  # the source is untouched
    assert _valid(h) is True
    assert [p[0] for p in partitions(h.ops)] == [("d", "s")]


def test_threads_are_independent_partitions() -> None:
    h = H()
    h.save("p1", "t1", 0, 1, "a")
    h.save("p1", "t2", 0, 1, "b")
    h.head("p2", "t1", 2, 3, "a")
    h.head("p2", "t2", 2, 3, "b")
    assert [p[0] for p in partitions(h.ops)] == [("t1",), ("t2",)]
    assert _valid(h) is True


# ---- anomalies ---------------------------------------------------------------------------------------


def test_stale_read_after_acknowledged_save_is_caught() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.save("p1", "t", 2, 3, "b")
    stale = h.head("p2", "t", 4, 5, "a")  # b was acknowledged before this load began
    result = check(h.ops, algorithm=_ALGORITHM[0])
    assert result.valid is False
    assert [a.op.index for a in result.anomalies] == [stale.index]
    assert any("newer head" in w for w in result.anomalies[0].why)


def test_deleted_checkpoint_coming_back_is_caught() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.save("p1", "t", 2, 3, "b")
    h.delete("p1", "t", 4, 5, "b")
    bad = h.get("p2", "t", 6, 7, "b", True)
    result = check(h.ops, algorithm=_ALGORITHM[0])
    assert result.valid is False and [a.op.index for a in result.anomalies] == [bad.index]
    assert any("deleted by" in w for w in result.anomalies[0].why)


def test_deleted_head_served_as_head_is_caught() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.save("p1", "t", 2, 3, "b")
    h.delete("p1", "t", 4, 5, "b")
    h.head("p2", "t", 6, 7, "b")
    assert _valid(h) is False


def test_cleared_thread_coming_back_is_caught() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.clear("p1", "t", 2, 3)
    h.head("p2", "t", 4, 5, None)
    bad = h.head("p3", "t", 6, 7, "a")
    result = check(h.ops, algorithm=_ALGORITHM[0])
    assert result.valid is False and [a.op.index for a in result.anomalies] == [bad.index]
    assert any("cleared by" in w for w in result.anomalies[0].why)


def test_cleared_checkpoint_in_a_list_after_a_later_save_is_caught() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.clear("p1", "t", 2, 3)
    h.save("p1", "t", 4, 5, "b")
    h.list("p2", "t", 6, 7, ["b", "a"])
    assert _valid(h) is False


def test_lost_acknowledged_save_is_caught() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.head("p2", "t", 2, 3, None)
    assert _valid(h) is False
    h2 = H()
    h2.save("p1", "t", 0, 1, "a")
    h2.save("p1", "t", 2, 3, "b")
    h2.list("p2", "t", 4, 5, ["b"])
    assert _valid(h2) is False


def test_lost_writes_are_caught() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.writes("p1", "t", 2, 3, "a", "w1")
    h.head("p2", "t", 4, 5, "a", writes=())
    assert _valid(h) is False


def test_both_cas_saves_succeeding_is_caught() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.save("p2", "t", 2, 5, "b", expected_head="a")
    h.save("p3", "t", 2, 5, "c", expected_head="a")
    assert _valid(h) is False


def test_copy_and_expect_empty_save_both_acknowledged_is_caught() -> None:
    h = H()
    h.save("p1", "s", 0, 1, "a")
    h.copy("p2", "s", "d", 2, 5)
    h.save("p3", "d", 2, 5, "x", expect_empty=True)
    assert _valid(h) is False


def test_copy_result_not_head_after_later_save_is_caught() -> None:
    h = H()
    h.save("p1", "s", 0, 1, "a")
    h.save("p1", "d", 0, 1, "old")
    h.delete("p1", "d", 2, 3, "old")
    h.copy("p2", "s", "d", 4, 5)
    h.save("p3", "d", 6, 7, "new")
    h.head("p3", "d", 8, 9, "a")  # issue 25 scenario 4: the copied head won over the newer save
    assert _valid(h) is False


def test_cas_failure_naming_a_stale_head_is_caught() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.save("p1", "t", 2, 3, "b")
    h.save("p2", "t", 4, 5, "c", expected_head="x", outcome=FAIL, current_head="a")
    assert _valid(h) is False


def test_read_missing_a_change_another_read_saw_is_caught() -> None:
    # the clear is still being acknowledged, but a CAS already saw the thread empty: a later read may not
    # see the old head again (linearizability, stronger than "misses no acknowledged change")
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.clear("p2", "t", 2, 10)
    h.save("p3", "t", 3, 4, "x", expected_head="a", outcome=FAIL, current_head="")
    h.head("p4", "t", 5, 6, "a")
    assert _valid(h) is False


def test_indeterminate_ops_do_not_excuse_a_read_before_they_began() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.save("p1", "t", 2, 3, "b")
    h.head("p2", "t", 4, 5, "a")  # stale: the indeterminate delete below began after this read
    h.delete("p3", "t", 6, None, "b", outcome=INFO)
    assert _valid(h) is False


def test_indeterminate_save_cannot_take_effect_twice() -> None:
    h = H()
    h.save("p2", "t", 0, None, "b", outcome=INFO)
    h.head("p3", "t", 3, 4, "b")
    h.delete("p1", "t", 5, 6, "b")
    h.head("p3", "t", 7, 8, "b")
    assert _valid(h) is False


def test_several_anomalies_are_all_reported() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.save("p1", "t", 2, 3, "b")
    first = h.head("p2", "t", 4, 5, "a")
    h.save("p1", "t", 6, 7, "c")
    second = h.head("p2", "t", 8, 9, "b")
    h.head("p2", "t", 10, 11, "c")
    assert sorted(_anomaly_ops(h)) == [first.index, second.index]


def test_too_large_a_search_is_unknown_not_a_pass() -> None:
    h = H()
    for i in range(12):  # many open writes, then a read no order explains: exhausting it takes long
        h.save(f"p{i}", "t", 0, None, f"s{i}", outcome=INFO)
        h.delete(f"q{i}", "t", 0, None, f"s{i}", outcome=INFO)
    h.list("r", "t", 1, 2, [f"s{i}" for i in range(12)] + ["never-saved"])
    result = check(h.ops, max_steps=50, algorithm=_ALGORITHM[0])
    assert result.valid is None
    assert result.partitions[0].verdict == "unknown"


def test_indeterminate_op_cannot_take_effect_after_its_window() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.save("p1", "t", 2, 3, "b")
    h.delete("p2", "t", 4, None, "b", outcome=INFO).effect_by = 6  # the server answered UNAVAILABLE at 5
    h.head("p3", "t", 7, 8, "b")  # so the delete never happened ...
    legal = _valid(h)
    h.head("p3", "t", 9, 10, "a")  # ... and cannot happen now
    assert legal is True and _valid(h) is False


def test_horizon_bounds_an_open_indeterminate_op() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.save("p1", "t", 2, 3, "b")
    h.delete("p2", "t", 4, None, "b", outcome=INFO)
    h.head("p3", "t", 7, 8, "b")
    h.head("p3", "t", 20, 21, "b")
    h.head("p3", "t", 30, 31, "a")  # legal only if a delete may land 26 s after it began
    assert check(h.ops, algorithm=_ALGORITHM[0]).valid is True
    assert check(h.ops, algorithm=_ALGORITHM[0], info_horizon_seconds=10).valid is False


def test_calls_never_sent_are_ignored() -> None:
    h = H()
    h.save("p1", "t", 0, 1, "a")
    h.unsent("p2", "t", 2, "b")
    h.head("p3", "t", 4, 5, "a")
    assert _valid(h) is True


def test_history_round_trips_through_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.harness.history import Recorder

    rec = Recorder()
    op = rec.invoke("p1", "save", "t", cid="a", expected_head=None, expect_empty=False)
    rec.ok(op)
    op = rec.invoke("p1", "load", "t", cid=None)
    rec.info(op, "UNAVAILABLE")
    path = str(tmp_path / "h.jsonl")
    rec.dump(path)
    back = Recorder.load(path)
    assert [(o.kind, o.outcome, o.end is None) for o in back] == [("save", OK, False), ("load", INFO, True)]
