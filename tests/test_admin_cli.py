"""The admin CLI (`cairn threads|history|show|delete|clear|health`), run as the real `cairn` command.

Every command is driven as a subprocess against real `cairn serve` processes (embedded, and Redis+Postgres);
data is seeded with the Python client. JSON output is checked field by field, the tables once, and errors must be
one `cairn: CODE: ...` line with a non-zero exit code and no traceback.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import select
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cairn_client import CheckpointClient
from tests.harness import free_port

ADMIN_BACKENDS = ["embedded", "redis+postgres"]


def cairn_command() -> list[str]:
    env = os.environ.get("CAIRN_BIN")
    if env:
        return env.split()
    exe = shutil.which("cairn")
    if not exe:
        pytest.fail("the `cairn` command is not installed: run `pip install -e '.[server]'` in the repo root")
    return [exe]


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without the CLI's own settings (CAIRN_TARGET names the shared server)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CAIRN_TARGET", "CAIRN_TOKEN", "CAIRN_TLS_CA")}
    env.update(extra)
    return env


@dataclass
class Result:
    rc: int
    out: str
    err: str
    raw: bytes

    def json(self) -> Any:
        assert self.rc == 0, f"exit {self.rc}: {self.err}"
        return json.loads(self.out)


def cairn(*args: str, target: str | None = None, env: dict[str, str] | None = None) -> Result:
    argv = [*cairn_command(), *args]
    if target is not None:
        argv += ["--target", target]
    proc = subprocess.run(argv, capture_output=True, env=env or clean_env(), timeout=120, stdin=subprocess.DEVNULL)
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    return Result(proc.returncode, out, err, proc.stdout)


def assert_error_line(res: Result, code: str, reason: str | None = None) -> None:
    assert res.rc == 1, (res.rc, res.out, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res.err
    assert lines[0].startswith(f"cairn: {code}: "), lines[0]
    if reason:
        assert lines[0].endswith(f"[{reason}]"), lines[0]


def parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text[:-1] + "+00:00")


@pytest.fixture(scope="module", params=ADMIN_BACKENDS)
def admin_target(request: pytest.FixtureRequest, server_factory) -> str:  # type: ignore[no-untyped-def]
    return server_factory(request.param).target


@pytest.fixture(scope="module")
def embedded_target(server_factory) -> str:  # type: ignore[no-untyped-def]
    return server_factory("embedded").target


def uid() -> str:
    return uuid.uuid4().hex[:12]


# -- health ----------------------------------------------------------------------------------------


def test_health_json(admin_target: str) -> None:
    res = cairn("health", "--json", target=admin_target)
    assert res.json() == {"target": admin_target, "service": "", "status": "SERVING", "serving": True}
    res = cairn("health", "--json", "--service", "cairn.v1.CheckpointStore", target=admin_target)
    assert res.json()["status"] == "SERVING"
    res = cairn("health", "--json", "--service", "no.such.Service", target=admin_target)
    assert res.rc == 1
    assert json.loads(res.out) == {
        "target": admin_target, "service": "no.such.Service", "status": "SERVICE_UNKNOWN", "serving": False,
    }


def test_health_unreachable() -> None:
    target = f"127.0.0.1:{free_port()}"
    res = cairn("health", "--timeout", "3", target=target)
    assert_error_line(res, "UNAVAILABLE")
    assert res.out == ""


# -- threads ---------------------------------------------------------------------------------------


def test_threads_json_status_and_pages(admin_target: str) -> None:
    suite = uid()
    ids = [f"adm-{suite}-{i}" for i in range(3)]
    statuses = ["running", "interrupted", "done"]
    with CheckpointClient(admin_target) as c:
        for i, (tid, status) in enumerate(zip(ids, statuses, strict=True)):
            parent = ""
            for step in range(i + 1):  # thread i gets i+1 checkpoints
                meta = {"suite": suite, "step": step, **({"status": status} if step == i else {})}
                parent = c.save(tid, {"step": step}, node_name=f"n{step}", next_nodes=["next"],
                                parent_checkpoint_id=parent, metadata=meta).checkpoint_id
        heads = {tid: c.load(tid).checkpoint_id for tid in ids}

    flt = json.dumps({"suite": suite})
    doc = cairn("threads", "--json", "--metadata-filter", flt, target=admin_target).json()
    assert set(doc) == {"threads", "next_page_token"}
    assert doc["next_page_token"] == ""
    rows = doc["threads"]
    assert [r["thread_id"] for r in rows] == ids[::-1]  # most recently updated first
    for r in rows:
        i = ids.index(r["thread_id"])
        assert set(r) == {"thread_id", "status", "checkpoint_count", "updated_at", "head_checkpoint_id",
                          "head_node_name", "head_next_nodes", "head_metadata"}
        assert r["status"] == statuses[i]
        assert r["checkpoint_count"] == i + 1
        assert r["head_checkpoint_id"] == heads[r["thread_id"]]
        assert r["head_node_name"] == f"n{i}"
        assert r["head_next_nodes"] == ["next"]
        assert r["head_metadata"] == {"suite": suite, "step": i, "status": statuses[i]}
        parse_time(r["updated_at"])

    # --status filters on the head's metadata
    doc = cairn("threads", "--json", "--metadata-filter", flt, "--status", "interrupted", target=admin_target).json()
    assert [r["thread_id"] for r in doc["threads"]] == [ids[1]]
    doc = cairn("threads", "--json", "--metadata-filter", flt, "--status", "nope", target=admin_target).json()
    assert doc == {"threads": [], "next_page_token": ""}

    # one page at a time, then --all
    seen: list[str] = []
    token = ""
    for _ in range(10):
        args = ["threads", "--json", "--metadata-filter", flt, "--page-size", "1"]
        doc = cairn(*args, *(["--page-token", token] if token else []), target=admin_target).json()
        assert len(doc["threads"]) <= 1
        seen += [r["thread_id"] for r in doc["threads"]]
        token = doc["next_page_token"]
        if not token:
            break
    assert seen == ids[::-1]
    doc = cairn("threads", "--json", "--metadata-filter", flt, "--page-size", "1", "--all", target=admin_target).json()
    assert [r["thread_id"] for r in doc["threads"]] == ids[::-1]
    assert doc["next_page_token"] == ""


# -- history ---------------------------------------------------------------------------------------


def seed_history(target: str, tid: str) -> list[Any]:
    """Three root checkpoints in a chain and one in namespace "child"; returns their SaveResults."""
    with CheckpointClient(target) as c:
        a = c.save(tid, {"n": 1}, node_name="start", next_nodes=["agent"], metadata={"step": 0, "source": "input"})
        b = c.save(tid, {"n": 2}, node_name="agent", next_nodes=["tools", "review"],
                   parent_checkpoint_id=a.checkpoint_id, metadata={"step": 1, "source": "loop"})
        s = c.save(tid, {"sub": True}, namespace="child", node_name="sub", metadata={"step": 0})
        d = c.save(tid, b"\x00\x01binary\xff", state_type="msgpack", node_name="tools",
                   parent_checkpoint_id=b.checkpoint_id, metadata={"step": 2, "source": "loop", "status": "done"})
    return [a, b, s, d]


def test_history_json(admin_target: str) -> None:
    tid = f"adm-hist-{uid()}"
    a, b, s, d = seed_history(admin_target, tid)
    doc = cairn("history", tid, "--json", target=admin_target).json()
    assert set(doc) == {"thread_id", "namespace", "checkpoints", "next_page_token"}
    assert doc["thread_id"] == tid and doc["namespace"] is None and doc["next_page_token"] == ""
    cps = doc["checkpoints"]
    assert [cp["checkpoint_id"] for cp in cps] == [d.checkpoint_id, s.checkpoint_id, b.checkpoint_id,
                                                   a.checkpoint_id]
    for cp in cps:
        assert set(cp) == {"checkpoint_id", "parent_checkpoint_id", "namespace", "sequence", "created_at",
                           "node_name", "next_nodes", "state_type", "state_size_bytes", "stored_size_bytes",
                           "metadata"}
        parse_time(cp["created_at"])
    top = cps[0]
    assert top["parent_checkpoint_id"] == b.checkpoint_id
    assert top["namespace"] == "" and top["sequence"] == 3
    assert top["node_name"] == "tools" and top["next_nodes"] == []
    assert top["state_type"] == "msgpack" and top["state_size_bytes"] == len(b"\x00\x01binary\xff")
    assert top["metadata"] == {"step": 2, "source": "loop", "status": "done"}
    assert cps[1]["namespace"] == "child" and cps[1]["sequence"] == 1
    assert cps[2]["next_nodes"] == ["tools", "review"] and cps[2]["state_size_bytes"] == len(b'{"n":2}')

    root = cairn("history", tid, "--json", "--namespace", "", target=admin_target).json()
    assert root["namespace"] == ""
    assert [cp["checkpoint_id"] for cp in root["checkpoints"]] == [d.checkpoint_id, b.checkpoint_id,
                                                                   a.checkpoint_id]
    child = cairn("history", tid, "--json", "--namespace", "child", target=admin_target).json()
    assert [cp["checkpoint_id"] for cp in child["checkpoints"]] == [s.checkpoint_id]
    loop = cairn("history", tid, "--json", "--metadata-filter", '{"source": "loop"}', target=admin_target).json()
    assert [cp["checkpoint_id"] for cp in loop["checkpoints"]] == [d.checkpoint_id, b.checkpoint_id]

    first = cairn("history", tid, "--json", "--page-size", "3", target=admin_target).json()
    assert len(first["checkpoints"]) == 3 and first["next_page_token"]
    rest = cairn("history", tid, "--json", "--page-size", "3", "--page-token", first["next_page_token"],
                 target=admin_target).json()
    assert [cp["checkpoint_id"] for cp in rest["checkpoints"]] == [a.checkpoint_id]
    assert rest["next_page_token"] == ""
    every = cairn("history", tid, "--json", "--page-size", "1", "--all", target=admin_target).json()
    assert [cp["checkpoint_id"] for cp in every["checkpoints"]] == [cp["checkpoint_id"] for cp in cps]

    # A thread without checkpoints is not found, as in `show`: exit 1 and one line.
    empty = cairn("history", f"adm-none-{uid()}", "--json", target=admin_target)
    assert_error_line(empty, "NOT_FOUND")
    assert empty.out == ""


# -- show ------------------------------------------------------------------------------------------


def test_show_json(admin_target: str) -> None:
    tid = f"adm-show-{uid()}"
    state = {"messages": [{"role": "user", "content": "héllo"}], "count": 2}
    with CheckpointClient(admin_target) as c:
        first = c.save(tid, {"count": 1}, node_name="start", metadata={"step": 0})
        head = c.save(tid, state, node_name="agent", next_nodes=["tools"], parent_checkpoint_id=first.checkpoint_id,
                      metadata={"step": 1, "status": "interrupted"})
        c.put_writes(tid, head.checkpoint_id, "task-1", [("messages", {"role": "tool", "content": "42"}),
                                                          ("blob", "bytes", b"\x00\xff")], task_path="p1")
        binary = c.save(f"{tid}-bin", b"\x93\x01\x02\x03" * 100, state_type="msgpack", node_name="x")

    doc = cairn("show", tid, "--json", target=admin_target).json()
    assert set(doc) == {"thread_id", "checkpoint_id", "parent_checkpoint_id", "namespace", "sequence", "created_at",
                        "node_name", "next_nodes", "state_type", "state_size_bytes", "stored_size_bytes", "metadata",
                        "state_is_json", "state", "state_b64", "pending_writes"}
    assert doc["thread_id"] == tid and doc["checkpoint_id"] == head.checkpoint_id
    assert doc["parent_checkpoint_id"] == first.checkpoint_id
    assert doc["node_name"] == "agent" and doc["next_nodes"] == ["tools"] and doc["sequence"] == 2
    assert doc["state_is_json"] is True and doc["state"] == state
    raw = json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()
    assert base64.b64decode(doc["state_b64"]) == raw
    assert doc["state_size_bytes"] == len(raw) and doc["stored_size_bytes"] > 0
    assert doc["metadata"] == {"step": 1, "status": "interrupted"}
    writes = doc["pending_writes"]
    assert [(w["task_id"], w["task_path"], w["idx"], w["channel"], w["value_type"]) for w in writes] == [
        ("task-1", "p1", 0, "messages", "json"), ("task-1", "p1", 1, "blob", "bytes")]
    assert writes[0]["value_is_json"] is True and writes[0]["value"] == {"role": "tool", "content": "42"}
    assert writes[1]["value_is_json"] is False and writes[1]["value"] is None
    assert base64.b64decode(writes[1]["value_b64"]) == b"\x00\xff" and writes[1]["size_bytes"] == 2

    older = cairn("show", tid, first.checkpoint_id, "--json", target=admin_target).json()
    assert older["checkpoint_id"] == first.checkpoint_id and older["state"] == {"count": 1}
    assert older["pending_writes"] == []

    bdoc = cairn("show", f"{tid}-bin", "--json", target=admin_target).json()
    assert bdoc["checkpoint_id"] == binary.checkpoint_id and bdoc["state_type"] == "msgpack"
    assert bdoc["state_is_json"] is False and bdoc["state"] is None
    assert base64.b64decode(bdoc["state_b64"]) == b"\x93\x01\x02\x03" * 100

    assert cairn("show", f"{tid}-bin", "--raw", target=admin_target).raw == b"\x93\x01\x02\x03" * 100
    assert cairn("show", tid, "--raw", target=admin_target).raw == raw


def test_show_namespace(admin_target: str) -> None:
    tid = f"adm-ns-{uid()}"
    with CheckpointClient(admin_target) as c:
        sub = c.save(tid, {"inner": 1}, namespace="child:1", node_name="sub")
    doc = cairn("show", tid, "--namespace", "child:1", "--json", target=admin_target).json()
    assert doc["checkpoint_id"] == sub.checkpoint_id and doc["namespace"] == "child:1"
    # the root namespace of that thread is empty
    assert_error_line(cairn("show", tid, target=admin_target), "NOT_FOUND", "THREAD_EMPTY")


# -- delete and clear ------------------------------------------------------------------------------


def test_delete_json(admin_target: str) -> None:
    tid = f"adm-del-{uid()}"
    with CheckpointClient(admin_target) as c:
        a = c.save(tid, {"n": 1})
        b = c.save(tid, {"n": 2}, parent_checkpoint_id=a.checkpoint_id)
    doc = cairn("delete", tid, b.checkpoint_id, "--json", target=admin_target).json()
    assert doc == {"thread_id": tid, "namespace": "", "checkpoint_id": b.checkpoint_id, "deleted": True}
    again = cairn("delete", tid, b.checkpoint_id, "--json", target=admin_target)
    assert_error_line(again, "NOT_FOUND")
    assert json.loads(again.out)["deleted"] is False
    assert_error_line(cairn("show", tid, b.checkpoint_id, target=admin_target), "NOT_FOUND", "CHECKPOINT_NOT_FOUND")
    assert cairn("show", tid, "--json", target=admin_target).json()["checkpoint_id"] == a.checkpoint_id
    text = cairn("delete", tid, a.checkpoint_id, target=admin_target)
    assert text.rc == 0 and f"deleted checkpoint {a.checkpoint_id}" in text.out


def test_clear_json(admin_target: str) -> None:
    tid = f"adm-clear-{uid()}"
    marker = uid()
    with CheckpointClient(admin_target) as c:
        c.save(tid, {"n": 1}, metadata={"m": marker})
        c.save(tid, {"n": 2}, metadata={"m": marker})
        c.save(tid, {"n": 3}, namespace="sub", metadata={"m": marker})
    # not a terminal (stdin is /dev/null): no question asked
    doc = cairn("clear", tid, "--json", target=admin_target).json()
    assert doc == {"thread_id": tid, "deleted_count": 3}
    again = cairn("clear", tid, "--yes", "--json", target=admin_target)
    assert_error_line(again, "NOT_FOUND")
    assert json.loads(again.out)["deleted_count"] == 0
    assert_error_line(cairn("history", tid, "--json", target=admin_target), "NOT_FOUND")
    threads = cairn("threads", "--json", "--metadata-filter", json.dumps({"m": marker}), target=admin_target).json()
    assert threads["threads"] == []


def run_on_tty(argv: list[str], answer: bytes | None) -> tuple[int, str]:
    """Run argv with stdin/stdout/stderr on a pseudo-terminal; answer the y/N question when it comes."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=clean_env(), close_fds=True)
    os.close(slave)
    buf = b""
    answered = answer is None
    deadline = time.monotonic() + 60  # a hang guard, not an assertion on speed
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                buf += chunk
            if not answered and b"[y/N]" in buf:
                os.write(master, answer)  # type: ignore[arg-type]
                answered = True
            if proc.poll() is not None and not ready:
                break
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return rc, buf.decode(errors="replace")


def test_clear_asks_on_a_terminal(embedded_target: str) -> None:
    tid = f"adm-tty-{uid()}"
    with CheckpointClient(embedded_target) as c:
        c.save(tid, {"n": 1})
        c.save(tid, {"n": 2})
    argv = [*cairn_command(), "clear", tid, "--target", embedded_target]
    rc, text = run_on_tty(argv, b"n\n")
    assert rc == 1, text
    assert f"Delete thread '{tid}': 2 checkpoints" in text
    assert "not confirmed; nothing deleted" in text and "Traceback" not in text
    assert cairn("show", tid, "--json", target=embedded_target).rc == 0

    rc, text = run_on_tty(argv, b"y\n")
    assert rc == 0, text
    assert f"cleared thread {tid}: 2 checkpoints deleted" in text
    rc, text = run_on_tty([*argv, "--yes"], None)  # --yes: no question; the thread is empty now: not found
    assert rc == 1 and "[y/N]" not in text and "NOT_FOUND" in text, text
    assert_error_line(cairn("show", tid, target=embedded_target), "NOT_FOUND", "THREAD_EMPTY")


# -- tables (once) ---------------------------------------------------------------------------------


def test_table_output(embedded_target: str) -> None:
    tid = f"adm-table-{uid()}"
    a, b, s, d = seed_history(embedded_target, tid)
    with CheckpointClient(embedded_target) as c:
        c.put_writes(tid, d.checkpoint_id, "task-9", [("messages", {"k": "v"})])
    marker = json.dumps({"status": "done", "step": 2})

    res = cairn("threads", "--metadata-filter", marker, "--all", target=embedded_target)
    assert res.rc == 0, res.err
    header, *rows = res.out.splitlines()
    assert header.split() == ["THREAD", "STATUS", "CHECKPOINTS", "UPDATED", "NODE", "NEXT", "HEAD"]
    row = next(r for r in rows if r.startswith(tid))
    assert row.split()[:3] == [tid, "done", "4"] and d.checkpoint_id in row and "tools" in row

    res = cairn("history", tid, target=embedded_target)
    assert res.rc == 0, res.err
    header, *rows = res.out.splitlines()
    assert header.split() == ["CREATED", "SEQ", "CHECKPOINT", "PARENT", "NAMESPACE", "NODE", "NEXT", "SIZE",
                              "STEP", "SOURCE", "STATUS"]
    assert len(rows) == 4
    assert d.checkpoint_id in rows[0] and b.checkpoint_id in rows[0] and "(root)" in rows[0]
    assert "child" in rows[1] and "tools,review" in rows[2]
    paged = cairn("history", tid, "--page-size", "1", target=embedded_target)
    assert len(paged.out.splitlines()) == 2 and "--page-token" in paged.err

    res = cairn("show", tid, b.checkpoint_id, target=embedded_target)
    assert res.rc == 0, res.err
    assert f"checkpoint {b.checkpoint_id}" in res.out and "next       tools,review" in res.out
    assert 'state:\n{\n  "n": 2\n}' in res.out  # pretty-printed JSON
    assert "pending writes (0):" in res.out

    res = cairn("show", tid, target=embedded_target)
    assert "not JSON" in res.out and "|..binary.|" in res.out  # the hex summary of a msgpack state
    assert "pending writes (1):" in res.out and 'task-9' in res.out and '{"k":"v"}' in res.out

    res = cairn("health", target=embedded_target)
    assert res.rc == 0 and res.out.strip() == "SERVING"


# -- errors, target and token ----------------------------------------------------------------------


def test_errors_are_one_line_with_exit_codes(admin_target: str) -> None:
    missing = f"adm-missing-{uid()}"
    assert_error_line(cairn("show", missing, target=admin_target), "NOT_FOUND", "THREAD_EMPTY")
    assert_error_line(cairn("show", missing, "no-such-id", "--json", target=admin_target), "NOT_FOUND",
                      "CHECKPOINT_NOT_FOUND")
    assert_error_line(cairn("show", "x" * 600, target=admin_target), "INVALID_ARGUMENT", "INVALID_FIELD")
    assert_error_line(cairn("delete", "bad\x01id", "cp", target=admin_target), "INVALID_ARGUMENT", "INVALID_FIELD")
    assert_error_line(cairn("threads", "--page-token", "garbage!", target=admin_target), "INVALID_ARGUMENT")

    unreachable = f"127.0.0.1:{free_port()}"
    for args in (["threads"], ["history", "t"], ["show", "t"], ["delete", "t", "c"], ["clear", "t", "--yes"]):
        assert_error_line(cairn(*args, "--timeout", "3", target=unreachable), "UNAVAILABLE")

    # usage errors: exit 2
    assert cairn("threads", "--metadata-filter", "{not json", target=admin_target).rc == 2
    assert cairn("threads", "--page-size", "-5", target=admin_target).rc == 2
    assert cairn("history", "", target=admin_target).rc == 2
    assert cairn("show", target=admin_target).rc == 2  # THREAD is required
    res = cairn("threads", "--tls-ca", "/nonexistent/ca.pem", target=admin_target)
    assert res.rc == 2 and res.err.startswith("cairn threads: error: cannot read --tls-ca")


def test_target_from_env_and_unix_socket(embedded_target: str, short_tmp: Path) -> None:
    tid = f"adm-env-{uid()}"
    with CheckpointClient(embedded_target) as c:
        c.save(tid, {"n": 1})
    res = cairn("show", tid, "--json", env=clean_env(CAIRN_TARGET=embedded_target))
    assert res.json()["thread_id"] == tid
    # --target wins over the env var
    res = cairn("health", "--json", target=embedded_target, env=clean_env(CAIRN_TARGET=f"127.0.0.1:{free_port()}"))
    assert res.json()["serving"] is True

    sock = short_tmp / "cairn.sock"
    proc = subprocess.Popen(
        [*cairn_command(), "serve", "--listen", f"unix:{sock}", "--sqlite-path", str(short_tmp / "c.db"),
         "--log-level", "WARNING"],
        env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        target = f"unix:{sock}"
        deadline = time.monotonic() + 60  # start-up guard
        while cairn("health", "--timeout", "2", target=target).rc != 0:
            assert proc.poll() is None, "cairn serve exited"
            assert time.monotonic() < deadline, "cairn serve on a unix socket did not become SERVING"
            time.sleep(0.2)
        with CheckpointClient(target) as c:
            c.save(tid, {"over": "unix"}, metadata={"status": "sidecar"})
        doc = cairn("threads", "--json", "--status", "sidecar", target=target).json()
        assert [t["thread_id"] for t in doc["threads"]] == [tid]
        assert cairn("show", tid, "--json", target=target).json()["state"] == {"over": "unix"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_token(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token = f"tok-{uid()}"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{token} tenant-a\n")
    target = server_factory("embedded", "--auth-tokens-file", str(tokens), token=token).target
    tid = f"adm-auth-{uid()}"
    with CheckpointClient(target, token=token) as c:
        c.save(tid, {"secret": 1})
    assert_error_line(cairn("show", tid, target=target), "UNAUTHENTICATED", "MISSING_TOKEN")
    assert_error_line(cairn("show", tid, "--token", "wrong", target=target), "UNAUTHENTICATED", "INVALID_TOKEN")
    assert cairn("show", tid, "--token", token, "--json", target=target).json()["state"] == {"secret": 1}
    res = cairn("threads", "--json", target=target, env=clean_env(CAIRN_TOKEN=token))
    assert [t["thread_id"] for t in res.json()["threads"]] == [tid]
    assert cairn("health", "--token", token, "--json", target=target).json()["serving"] is True
