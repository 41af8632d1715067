"""`cairn console` over HTTP against a live, seeded server: what each page's API returns, and the
security rules (tenant, CSRF, read-only, Host). The browser itself is driven in test_console_browser.py."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from cairn_client import CheckpointClient, RunStopped
from cairn_console.decode import decode, pretty
from cairn_console.diff import diff

from tests.console_support import (
    OTHER_TENANT_RUN,
    OTHER_TENANT_THREAD,
    TOKEN_A,
    ConsoleProcess,
    Seeded,
    csrf_token,
    http,
    seed_server,
    start_console,
)


@pytest.fixture(scope="module")
def seeded(server_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed_server(server_factory, tmp_path_factory.mktemp("console"))


@pytest.fixture(scope="module")
def ro(seeded: Seeded) -> Iterator[ConsoleProcess]:
    with start_console(seeded, "--metrics-interval-seconds", "0.5") as console:
        yield console


@pytest.fixture(scope="module")
def rw(seeded: Seeded) -> Iterator[ConsoleProcess]:
    with start_console(seeded, "--allow-writes") as console:
        yield console


def api(console: ConsoleProcess, path: str, **params: str) -> Any:
    status, body = http("GET", console.url + "api/" + path + "?" + urllib.parse.urlencode(params))
    assert status == 200, body
    return body


def all_thread_ids(console: ConsoleProcess, **params: str) -> list[str]:
    ids, token = [], ""
    while True:
        page = api(console, "threads", page_size="500", page_token=token, **params)
        ids += [t["thread_id"] for t in page["threads"]]
        token = page["next_page_token"]
        if not token:
            return ids


def test_threads_are_those_of_the_tokens_tenant_only(seeded: Seeded, ro: ConsoleProcess) -> None:
    ids = all_thread_ids(ro)
    assert {"agent-fork", "langgraph-chat", "large-state", *seeded.statuses} <= set(ids)
    assert OTHER_TENANT_THREAD not in ids
    status, body = http("GET", ro.url + "api/timeline?" + urllib.parse.urlencode({"thread_id": OTHER_TENANT_THREAD}))
    assert status == 200 and body["rows"] == []


def test_the_token_never_reaches_the_page(seeded: Seeded, ro: ConsoleProcess) -> None:
    token = seeded.token_file.read_text().strip()
    for path in ("", "static/app.js", "api/config", "api/threads", "api/health"):
        _, body = http("GET", ro.url + path)
        assert token not in (body if isinstance(body, bytes) else json.dumps(body).encode()).decode()


def test_threads_filter_by_status_and_metadata_and_page(seeded: Seeded, ro: ConsoleProcess) -> None:
    failed = all_thread_ids(ro, status="failed")
    assert sorted(failed) == sorted(t for t in seeded.statuses if "-failed-" in t)
    triage = api(ro, "threads", metadata=json.dumps({"graph": "triage"}))["threads"]
    assert [t["thread_id"] for t in triage] == ["agent-fork"]
    with seeded.client() as c:
        head = c.load("agent-fork")
    assert (triage[0]["head_raw"], triage[0]["head_stored"]) == (head.state_size_bytes, head.stored_size_bytes)
    first = api(ro, "threads", page_size="2")
    assert len(first["threads"]) == 2 and first["next_page_token"]
    second = api(ro, "threads", page_size="2", page_token=first["next_page_token"])
    assert not {t["thread_id"] for t in first["threads"]} & {t["thread_id"] for t in second["threads"]}
    status, body = http("GET", ro.url + "api/threads?metadata=" + urllib.parse.quote("[1]"))
    assert status == 400 and "JSON object" in body["error"]


def test_thread_id_prefix_search(seeded: Seeded, ro: ConsoleProcess) -> None:
    page = api(ro, "threads", prefix="job-running-", page_size="50")
    assert sorted(t["thread_id"] for t in page["threads"]) == ["job-running-0", "job-running-1", "job-running-2"]
    assert page["next_page_token"] == "" and page["scanned"] >= len(seeded.statuses)
    combined = api(ro, "threads", prefix="job-", status="completed", page_size="50")
    assert sorted(t["thread_id"] for t in combined["threads"]) == [t for t in seeded.statuses if "-completed-" in t]


def test_timeline_rows_carry_parents_namespaces_and_sizes(seeded: Seeded, ro: ConsoleProcess) -> None:
    rows = api(ro, "timeline", thread_id="agent-fork")["rows"]
    by_id = {r["id"]: r for r in rows}
    assert by_id[seeded.fork["branch"]]["parent"] == seeded.fork["chain"][2]
    assert by_id[seeded.fork["chain"][3]]["parent"] == seeded.fork["chain"][2]
    assert {r["ns"] for r in rows} == {"", "search:7f3a"}
    head = by_id[seeded.fork["head"]]
    assert head["node"] == "__end__" and head["step"] == 6 and head["source"] == "loop"
    assert head["raw"] > 0 and head["stored"] > 0


def test_checkpoint_view_diffs_against_its_parent_and_groups_writes(seeded: Seeded, ro: ConsoleProcess) -> None:
    view = api(ro, "checkpoint", thread_id="agent-fork", ns="", id=seeded.fork["head"])
    assert view["checkpoint"]["parent"] == seeded.fork["chain"][-1]
    changes = {(c["op"], c["path"]) for c in view["diff"]["changes"]}
    assert ("added", "messages[6]") in changes and ("changed", "step") in changes
    assert view["state"]["decoded"] and json.loads(view["state"]["text"])["step"] == 6
    (task,) = view["writes"]
    assert task["task_id"] == "task-1" and [w["channel"] for w in task["writes"]] == ["__interrupt__", "messages"]
    first = api(ro, "checkpoint", thread_id="agent-fork", ns="", id=seeded.fork["chain"][0])
    assert first["diff"] == {"parent": None, "available": False, "reason": "first checkpoint"}


def test_langgraph_msgpack_state_is_decoded(ro: ConsoleProcess) -> None:
    view = api(ro, "checkpoint", thread_id="langgraph-chat")
    assert view["checkpoint"]["state_type"] == "msgpack"
    assert view["state"]["decoded"] and "msgpack (LangGraph), decoded" in view["state"]["label"]
    state = json.loads(view["state"]["text"])
    messages = state["channel_values"]["messages"]
    assert messages[0]["__type__"] == "langchain_core.messages.human.HumanMessage"
    assert [m["value"]["content"] for m in messages] == ["hello", "echo: hello", "and again", "echo: and again"]
    assert ("added", "channel_values.messages[3]") in {(c["op"], c["path"]) for c in view["diff"]["changes"]}


def test_large_state_is_cut_and_downloadable_whole(seeded: Seeded, ro: ConsoleProcess) -> None:
    view = api(ro, "checkpoint", thread_id="large-state", id=seeded.large_head)
    assert view["state"]["truncated"] and len(view["state"]["text"]) <= 200_000
    assert view["state"]["raw_bytes"] > 1_000_000
    assert view["diff"]["changes"] == [{"op": "added", "path": f"messages[{view_len(seeded) - 1}]",
                                        "old": None, "new": view["diff"]["changes"][0]["new"]}]
    status, body = http("GET", ro.url + "api/state?" + urllib.parse.urlencode(
        {"thread_id": "large-state", "id": seeded.large_head}))
    with seeded.client() as c:
        assert status == 200 and body == json.loads(c.load("large-state").state)


def view_len(seeded: Seeded) -> int:
    with seeded.client() as c:
        return len(c.load("large-state", checkpoint_id=seeded.large_head).json()["messages"])


def test_errors_of_the_api_map_to_http_statuses(ro: ConsoleProcess) -> None:
    status, body = http("GET", ro.url + "api/checkpoint?thread_id=agent-fork&id=no-such-checkpoint")
    assert status == 404 and body["code"] == "NOT_FOUND"
    status, body = http("GET", ro.url + "api/timeline")
    assert status == 400 and "thread_id" in body["error"]
    status, body = http("GET", ro.url + "api/threads?metadata=" + urllib.parse.quote('{"n": 9007199254740993}'))
    assert status == 400 and "2**53" in body["error"]
    status, body = http("GET", ro.url + "api/no-such-page")
    assert status == 404 and body["error"] == "Not Found"


def test_health_draws_rates_from_the_servers_metrics(seeded: Seeded, ro: ConsoleProcess) -> None:
    deadline = time.monotonic() + 30
    while True:
        api(ro, "threads")  # traffic for the rates
        report = api(ro, "health")
        if len(report["series"]) >= 2 and any(p["requests_per_second"] > 0 for p in report["series"]):
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.3)
    assert report["configured"] and report["error"] is None
    assert report["totals"]["requests_by_method"]["ListThreads"] > 0
    assert "raw_in" in report["totals"]["state_bytes"]


def test_read_only_console_refuses_every_post(ro: ConsoleProcess) -> None:
    token = csrf_token(ro)
    status, body = http("POST", ro.url + "api/actions/clear", {"thread_id": "agent-fork"},
                        {"X-Cairn-CSRF": token, "Content-Type": "application/json"})
    assert status == 403 and body["reason"] == "READ_ONLY"
    assert api(ro, "config")["allow_writes"] is False


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Cairn-CSRF": "wrong"},
        {"X-Cairn-CSRF": "<right>", "Origin": "http://evil.example"},
    ],
    ids=["no-token", "wrong-token", "cross-origin"],
)
def test_writes_need_the_csrf_token_and_same_origin(rw: ConsoleProcess, headers: dict[str, str]) -> None:
    if headers.get("X-Cairn-CSRF") == "<right>":
        headers = {**headers, "X-Cairn-CSRF": csrf_token(rw)}
    status, body = http("POST", rw.url + "api/actions/clear", {"thread_id": "job-running-0"}, headers)
    assert status == 403 and body["reason"] == "CSRF"
    assert api(rw, "timeline", thread_id="job-running-0")["rows"], "the refused clear must not have run"


def test_a_foreign_host_header_is_refused(rw: ConsoleProcess, seeded: Seeded) -> None:
    status, body = http("GET", rw.url + "api/threads", headers={"Host": "attacker.example:80"})
    assert status == 403 and "Host" in body["error"]
    status, _ = http("GET", rw.url + "api/threads", headers={"Host": f"localhost:{rw.port}"})
    assert status == 200
    with start_console(seeded, "--allow-host", "console.internal") as named:
        status, _ = http("GET", named.url + "api/threads", headers={"Host": f"console.internal:{named.port}"})
        assert status == 200
        status, _ = http("GET", named.url + "api/threads", headers={"Host": "attacker.example"})
        assert status == 403


def test_write_actions_with_the_csrf_token(seeded: Seeded, rw: ConsoleProcess) -> None:
    headers = {"X-Cairn-CSRF": csrf_token(rw), "Origin": rw.url.rstrip("/")}
    status, body = http("POST", rw.url + "api/actions/fork", {
        "thread_id": "agent-fork", "ns": "", "id": seeded.fork["chain"][2], "target_thread_id": "forked-by-api"},
        headers)
    assert status == 200, body
    with seeded.client() as c:
        head = c.load("forked-by-api")
        assert head.parent_checkpoint_id == seeded.fork["chain"][2]
        assert head.json() == c.load("agent-fork", checkpoint_id=seeded.fork["chain"][2]).json()
        assert head.metadata["source"] == "fork"
    status, body = http("POST", rw.url + "api/actions/fork", {
        "thread_id": "agent-fork", "ns": "", "id": seeded.fork["chain"][2], "target_thread_id": "forked-by-api"},
        headers)
    assert status == 409, body  # CopyThread into a thread that is not empty
    status, body = http("POST", rw.url + "api/actions/prune", {"thread_id": "forked-by-api", "keep_latest": 2}, headers)
    assert status == 200 and body["deleted_count"] > 0
    status, body = http("POST", rw.url + "api/actions/delete",
                        {"thread_id": "forked-by-api", "ns": "search:7f3a", "id": seeded.fork["sub_head"]}, headers)
    assert status == 200 and body == {"deleted": True}
    status, body = http("POST", rw.url + "api/actions/clear", {"thread_id": "forked-by-api"}, headers)
    assert status == 200 and body["deleted_count"] > 0
    status, body = http("POST", rw.url + "api/actions/prune", {"thread_id": "x", "keep_latest": 0}, headers)
    assert status == 400


def test_decode_labels_what_it_cannot_show() -> None:
    import pickle

    assert not decode(pickle.dumps({"a": 1}), "pickle").ok
    assert "never unpickled" in decode(pickle.dumps({"a": 1}), "pickle").label
    assert "encrypted" in decode(b"\x00" * 40, "msgpack+aes").label
    broken = decode(b"\xc1\xc1", "msgpack")
    assert not broken.ok and "does not decode" in broken.label
    assert decode(b'{"a": [1, 2]}', "json").value == {"a": [1, 2]}


def test_pretty_stops_at_its_limit_and_diff_at_its_count() -> None:
    big = {"items": [{"n": i, "text": "x" * 50} for i in range(200_000)]}
    text, cut = pretty(big, 10_000)
    assert cut and len(text) == 10_000
    changes, truncated = diff({"a": list(range(10))}, {"a": list(range(10, 20))}, max_changes=3)
    assert truncated and [c.path for c in changes] == ["a[0]", "a[1]", "a[2]"]
    changes, truncated = diff({"a": 1}, {"a": 1, "b": 2}, max_changes=1)
    assert not truncated and changes[0].op == "added"


def test_serve_console_listen_runs_a_read_only_console_and_stops_it(tmp_path: Any) -> None:
    import os
    import signal

    from tests.harness import CairnProcess, free_port
    from cairn_tools.cluster import _descendants

    port = free_port()
    with CairnProcess.embedded("--log-level", "WARNING", "--console-listen", f"127.0.0.1:{port}") as server:
        url = f"http://127.0.0.1:{port}/api/"
        deadline = time.monotonic() + 30
        while True:
            try:
                status, config = http("GET", url + "config")
                break
            except OSError:
                assert time.monotonic() < deadline, server.log_text()
                time.sleep(0.2)
        assert status == 200 and config == {"target": server.target, "allow_writes": False, "health": False}
        with CheckpointClient(server.target) as c:
            c.save("served-console", {"a": 1})
        status, page = http("GET", url + "threads")
        assert [t["thread_id"] for t in page["threads"]] == ["served-console"]
        assert server.pid is not None
        (console_pid,) = _descendants(server.pid)
        os.kill(server.pid, signal.SIGTERM)
        server._proc.wait(30)  # type: ignore[union-attr]
        assert not os.path.exists(f"/proc/{console_pid}"), "cairn serve left its console running"


def test_the_console_is_a_client_of_the_public_api_only() -> None:
    """cairn_console imports cairn_client (and through it cairn.v1), never the server's packages."""
    import ast
    from pathlib import Path

    import cairn_console

    root = Path(cairn_console.__file__).parent
    imported: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
    assert "cairn_client" in imported
    assert not {m for m in imported if m.split(".")[0] == "cairn_server"}, imported


def test_a_langgraph_thread_forked_by_the_console_resumes_in_langgraph(seeded: Seeded, rw: ConsoleProcess) -> None:
    """The fork's new head is LangGraph's own serialized checkpoint, under an id LangGraph's kind
    (UUIDv6) that sorts after the copied ones; LangGraph resumes from it."""
    import uuid

    from cairn_client.langgraph import CairnSaver
    from langchain_core.messages import HumanMessage

    from cairn_tools.seed import langgraph_app

    with seeded.client() as c:
        checkpoints = c.list("langgraph-chat", page_size=100).checkpoints
    source = next(cp for cp in checkpoints if cp.metadata.get("step") == 1)  # after the first reply
    headers = {"X-Cairn-CSRF": csrf_token(rw)}
    status, body = http("POST", rw.url + "api/actions/fork", {
        "thread_id": "langgraph-chat", "id": source.checkpoint_id, "target_thread_id": "langgraph-fork"}, headers)
    assert status == 200, body
    assert uuid.UUID(body["head_checkpoint_id"]).version == 6
    assert body["head_checkpoint_id"] > max(cp.checkpoint_id for cp in checkpoints)
    app = langgraph_app(CairnSaver(seeded.target, token=TOKEN_A))
    config = {"configurable": {"thread_id": "langgraph-fork"}}
    assert [m.content for m in app.get_state(config).values["messages"]] == ["hello", "echo: hello"]
    out = app.invoke({"messages": [HumanMessage(content="forked")]}, config)
    assert [m.content for m in out["messages"]] == ["hello", "echo: hello", "forked", "echo: forked"]


# -- runs ----------------------------------------------------------------------------------------------


def all_runs(console: ConsoleProcess, **params: str) -> list[dict[str, Any]]:
    runs, token = [], ""
    while True:
        page = api(console, "runs", page_size="2", page_token=token, **params)
        assert len(page["runs"]) <= 2
        runs += page["runs"]
        token = page["next_page_token"]
        if not token:
            return runs


def test_runs_are_those_of_the_tokens_tenant_and_page(seeded: Seeded, ro: ConsoleProcess) -> None:
    runs = all_runs(ro)
    ids = [r["run_id"] for r in runs]
    assert len(ids) == len(set(ids))  # paging by 2 neither repeats nor skips
    assert set(seeded.runs.values()) <= set(ids) and OTHER_TENANT_RUN not in ids
    status, body = http("GET", ro.url + "api/run?" + urllib.parse.urlencode({"run_id": OTHER_TENANT_RUN}))
    assert status == 404, body


def test_runs_filter_by_status_queue_and_thread(seeded: Seeded, ro: ConsoleProcess) -> None:
    assert [r["run_id"] for r in all_runs(ro, status="failed")] == [seeded.runs["failed"]]
    assert {r["run_id"] for r in all_runs(ro, status="running,completed")} == {
        seeded.runs["running"], seeded.runs["completed"], seeded.runs["recovered"]}
    assert [r["run_id"] for r in all_runs(ro, queue="gpu")] == [seeded.runs["running"]]
    assert [r["run_id"] for r in all_runs(ro, thread_id="run-thread-pending")] == [seeded.runs["pending"]]
    assert all_runs(ro, status="pending", queue="gpu") == []
    status, body = http("GET", ro.url + "api/runs?status=sleeping")
    assert status == 400 and "unknown run status 'sleeping'" in body["error"] and "pending" in body["error"]
    status, body = http("GET", ro.url + "api/runs?page_size=1001")
    assert status == 400 and "1..1000" in body["error"]


def test_run_list_rows_show_lease_holder_attempts_and_error(seeded: Seeded, ro: ConsoleProcess) -> None:
    by_id = {r["run_id"]: r for r in all_runs(ro)}
    running = by_id[seeded.runs["running"]]
    assert running["status"] == "running" and running["queue"] == "gpu" and running["thread_id"] == "run-thread-running"
    assert running["worker_id"] == "worker-gpu-7" and running["attempt_count"] == 1 and running["lease_epoch"] == 1
    assert running["lease_expires_at"] > running["started_at"] >= running["created_at"] and running["ended_at"] is None
    failed = by_id[seeded.runs["failed"]]
    assert failed["status"] == "failed" and failed["attempt_count"] == 2 and failed["failed_attempt_count"] == 2
    assert failed["error"] == {"reason": "ERROR", "type": "TimeoutError",
                               "message": "the model did not answer within 30 s", "retryable": True}
    assert failed["ended_at"] and failed["done"]
    pending = by_id[seeded.runs["pending"]]
    assert pending["status"] == "pending" and pending["worker_id"] == "" and pending["attempt_count"] == 0
    assert pending["started_at"] is None and pending["error"] is None


def test_a_run_shows_its_attempts_input_and_output(seeded: Seeded, ro: ConsoleProcess) -> None:
    failed = api(ro, "run", run_id=seeded.runs["failed"])
    assert [(a["number"], a["worker_id"], a["status"], a["recovered"]) for a in failed["attempts"]] == [
        (1, "worker-batch-1", "failed", False), (2, "worker-batch-2", "failed", False)]
    assert all(a["error"]["type"] == "TimeoutError" and a["started_at"] <= a["ended_at"] for a in failed["attempts"])
    assert failed["input"]["decoded"] and json.loads(failed["input"]["text"]) == {"ticket": 812, "task": "triage"}
    assert failed["metadata"] == {"graph": "triage"} and failed["retry_policy"]["max_attempts"] == 2
    done = api(ro, "run", run_id=seeded.runs["completed"])
    assert json.loads(done["output"]["text"]) == {"answer": "Paris"} and done["status"] == "completed"
    with seeded.client() as c:
        assert done["checkpoint_id"] == c.load("run-thread-completed").checkpoint_id
    pending = api(ro, "run", run_id=seeded.runs["pending"])
    assert pending["attempts"] == [] and pending["output"] is None
    recovered = api(ro, "run", run_id=seeded.runs["recovered"])
    assert recovered["status"] == "running" and recovered["recovery_count"] == 1
    assert recovered["worker_id"] == "worker-rescuer" and recovered["lease_epoch"] == 2
    (lost, rescue) = recovered["attempts"]
    assert (lost["worker_id"], lost["status"], lost["error"]["reason"], lost["recovered"]) == (
        "worker-crashed", "failed", "LEASE_EXPIRED", False)
    assert (rescue["worker_id"], rescue["status"], rescue["ended_at"], rescue["recovered"]) == (
        "worker-rescuer", "running", None, True)
    status, body = http("GET", ro.url + "api/run?run_id=no-such-run")
    assert status == 404, body
    status, body = http("GET", ro.url + "api/run")
    assert status == 400 and "run_id" in body["error"]


def test_cancel_run_needs_writes_and_the_csrf_token(seeded: Seeded, ro: ConsoleProcess, rw: ConsoleProcess) -> None:
    with seeded.client() as c:
        run = c.start_run("run-thread-api-cancel", {"n": 2}, queue="api-cancel")
    body = {"run_id": run.run_id}
    status, out = http("POST", ro.url + "api/actions/cancel-run", body, {"X-Cairn-CSRF": csrf_token(ro)})
    assert status == 403 and out["reason"] == "READ_ONLY"
    status, out = http("POST", rw.url + "api/actions/cancel-run", body)
    assert status == 403 and out["reason"] == "CSRF"
    with seeded.client() as c:
        assert c.get_run(run.run_id).status == "PENDING"
    headers = {"X-Cairn-CSRF": csrf_token(rw), "Origin": rw.url.rstrip("/")}
    status, out = http("POST", rw.url + "api/actions/cancel-run", body, headers)
    assert status == 200 and out["run"]["status"] == "cancelled", out
    with seeded.client() as c:
        assert c.get_run(run.run_id).status == "CANCELLED"
    status, out = http("POST", rw.url + "api/actions/cancel-run", body, headers)
    assert status == 200 and out["run"]["status"] == "cancelled"  # again: CancelRun changes nothing
    # A completed run cannot be cancelled: FAILED_PRECONDITION (RUN_FINISHED), answered as a conflict.
    status, out = http("POST", rw.url + "api/actions/cancel-run", {"run_id": seeded.runs["completed"]}, headers)
    assert status == 409 and out["code"] == "FAILED_PRECONDITION" and out["reason"] == "RUN_FINISHED", out
    status, out = http("POST", rw.url + "api/actions/cancel-run", {"run_id": ""}, headers)
    assert status == 400 and "run_id" in out["error"]


def test_cancelling_a_running_run_asks_its_worker_to_stop(seeded: Seeded, rw: ConsoleProcess) -> None:
    with seeded.client() as c:
        run = c.start_run("run-thread-api-cancel-running", queue="api-cancel-running")
        claim = c.claim_run("api-cancel-running", "worker-x", lease_seconds=60)
        assert claim is not None
    headers = {"X-Cairn-CSRF": csrf_token(rw)}
    status, out = http("POST", rw.url + "api/actions/cancel-run", {"run_id": run.run_id}, headers)
    assert status == 200 and out["run"]["cancel_requested"] and out["run"]["worker_id"] == "worker-x", out
    with seeded.client() as c:
        with pytest.raises(RunStopped) as err:
            c.heartbeat(claim.lease)
        assert err.value.reason == "RUN_CANCELLED"
        assert c.get_run(run.run_id).status == "CANCELLED"
