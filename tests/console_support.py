"""`cairn console` as a real subprocess for the console tests, and the seeded server they share.

The server runs with bearer tokens for two tenants; the console is given tenant A's token through a
file, and tenant B holds a thread the console must never show.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn_client import CheckpointClient

from cairn_tools import seed as console_seed
from cairn_tools.cluster import HOST, ConsoleProcess, free_port

TOKEN_A, TOKEN_B = "console-token-a", "console-token-b"
AUTH_TOKENS = f"{TOKEN_A} tenant-a,{TOKEN_B} tenant-b"
OTHER_TENANT_THREAD = "tenant-b-secret-thread"
OTHER_TENANT_RUN = "tenant-b-secret-run"


@dataclass
class Seeded:
    """The live server, its metrics URL, and the ids the seed produced."""

    target: str
    metrics_url: str
    token_file: Path
    fork: dict[str, Any]
    statuses: list[str]
    large_head: str
    runs: dict[str, str]
    """Seeded durable runs, by role (pending, to_cancel, running, failed, completed) -> run id."""

    def client(self, token: str = TOKEN_A) -> CheckpointClient:
        return CheckpointClient(self.target, token=token)


def seed_server(server_factory: Any, tmp_dir: Path) -> Seeded:
    """Start a server with two tenants and metrics, and seed tenant A (and one thread of tenant B)."""
    metrics_port = free_port()
    backend = server_factory("embedded", token=TOKEN_A, auth_tokens=AUTH_TOKENS,
                             metrics_listen=f"{HOST}:{metrics_port}")
    token_file = tmp_dir / "console.token"
    token_file.write_text(TOKEN_A + "\n")
    with CheckpointClient(backend.target, token=TOKEN_A) as c:
        fork = console_seed.seed_fork_thread(c)
        statuses = console_seed.seed_status_threads(c)
        large = console_seed.seed_large_state(c, mb=1.5)
        runs = console_seed.seed_runs(c)
    console_seed.seed_langgraph_thread(backend.target, TOKEN_A)
    with CheckpointClient(backend.target, token=TOKEN_B) as c:
        c.save(OTHER_TENANT_THREAD, {"secret": True}, metadata={"status": "failed"})
        c.start_run(OTHER_TENANT_THREAD, {"secret": True}, queue="default", run_id=OTHER_TENANT_RUN)
    return Seeded(backend.target, f"http://{HOST}:{metrics_port}/metrics", token_file, fork, statuses, large, runs)


def start_console(seeded: Seeded, *extra: str) -> ConsoleProcess:
    console = ConsoleProcess("--target", seeded.target, "--token-file", str(seeded.token_file),
                             "--metrics-url", seeded.metrics_url, *extra)
    console.start()
    return console


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One HTTP request; returns (status, parsed JSON or raw bytes)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        status, raw, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
    return status, (json.loads(raw) if "json" in ctype and raw[:1] in (b"{", b"[") else raw)


def csrf_token(console: ConsoleProcess) -> str:
    _, page = http("GET", console.url)
    text = page.decode()
    marker = 'name="cairn-csrf" content="'
    start = text.index(marker) + len(marker)
    return text[start:text.index('"', start)]
