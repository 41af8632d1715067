"""`cairn runs`, `cairn run show RUN`, `cairn run cancel RUN` as subprocesses against a real server."""

from __future__ import annotations

import uuid

import pytest

from cairn_client import CheckpointClient, RetryPolicy
from tests.test_admin_cli import assert_error_line, cairn


@pytest.fixture(scope="module")
def srv(server_factory):  # type: ignore[no-untyped-def]
    return server_factory("embedded")


def test_list_show_cancel(srv) -> None:  # type: ignore[no-untyped-def]
    queue = f"cli-{uuid.uuid4().hex[:8]}"
    with CheckpointClient(srv.target) as c:
        failed = c.start_run(f"t-{uuid.uuid4()}", {"x": 1}, queue=queue,
                             retry=RetryPolicy(max_attempts=2, initial_backoff_seconds=60))
        claim = c.claim_run(queue, "w-cli")
        assert claim is not None
        c.fail_run(claim.lease, OSError("disk full"), retryable=True)
        pending = c.start_run(f"t-{uuid.uuid4()}", {"y": 2}, queue=queue)

    listed = cairn("runs", "--queue", queue, "--json", target=srv.target).json()
    assert [r["run_id"] for r in listed["runs"]] == [pending.run_id, failed.run_id]
    assert listed["runs"][1]["error"] == {"reason": "ERROR", "type": "OSError", "message": "disk full",
                                          "retryable": True}
    table = cairn("runs", "--queue", queue, "--status", "pending", target=srv.target)
    assert table.rc == 0 and pending.run_id in table.out and "OSError" in table.out

    shown = cairn("run", "show", failed.run_id, "--json", target=srv.target).json()
    assert shown["status"] == "PENDING" and shown["input"] == {"x": 1} and shown["output"] is None
    assert [(a["number"], a["worker_id"], a["status"]) for a in shown["attempts"]] == [(1, "w-cli", "FAILED")]
    text = cairn("run", "show", failed.run_id, target=srv.target)
    assert text.rc == 0 and "w-cli" in text.out and "disk full" in text.out

    cancelled = cairn("run", "cancel", failed.run_id, target=srv.target)
    assert cancelled.rc == 0 and cancelled.out.strip() == f"{failed.run_id}: CANCELLED"
    assert cairn("runs", "--queue", queue, "--status", "CANCELLED", "--json",
                 target=srv.target).json()["runs"][0]["run_id"] == failed.run_id

    assert_error_line(cairn("run", "show", "no-such-run", target=srv.target), "NOT_FOUND", "RUN_NOT_FOUND")
    assert cairn("runs", "--status", "bogus", target=srv.target).rc == 2


def test_readme_example_runs(srv) -> None:  # type: ignore[no-untyped-def]
    """The README's "Durable runs" example, as written, against a real server."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## Durable runs", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    code = block.replace('"127.0.0.1:50051"', repr(srv.target)).replace("print(", "result = (")
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec", dont_inherit=True), scope)  # noqa: S102 - our own README
    assert scope["result"] == "COMPLETED"
