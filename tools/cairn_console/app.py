"""The console's HTTP side: an aiohttp application serving the page and a small JSON API.

Why aiohttp: the console is an asyncio program around a ``grpc.aio`` channel, and aiohttp is a
well-kept asyncio HTTP server and client in one package (the client scrapes /metrics), with no separate
ASGI server to run.

Security, enforced by the middleware here for every request:
  * the gRPC token stays in this process; the page never sees it, and no URL carries it;
  * requests whose Host header is not the console's own address are refused, so a page on another
    site cannot read the console through DNS rebinding;
  * state-changing requests (POST) are refused unless the console runs with ``--allow-writes``, and
    then need the per-process CSRF token in the ``X-Cairn-CSRF`` header (which a cross-site form cannot
    set), a same-origin ``Origin`` when the browser sends one, and a JSON body;
  * a strict Content-Security-Policy: scripts and styles only from the console itself.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import aiohttp
from aiohttp import web
from cairn_client import (
    TLS,
    AlreadyExists,
    AsyncCheckpointClient,
    CairnError,
    Conflict,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

from . import actions, runs, views
from .health import HealthSampler

log = logging.getLogger("cairn.console")

CSRF_HEADER = "X-Cairn-CSRF"
MAX_PAGE_SIZE = 500
# Checkpoint views and state downloads running at once: each holds up to two whole states in memory.
MAX_STATE_REQUESTS = 4
_STATIC_FILES = {"app.js": "text/javascript", "app.css": "text/css"}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True)
class ConsoleConfig:
    """How ``cairn console`` was started."""

    target: str
    """gRPC address of the Cairn server (host:port or unix:/path)."""
    listen_host: str = "127.0.0.1"
    """Address the console's HTTP server binds; loopback unless told otherwise."""
    listen_port: int = 8080
    """Its port (0 picks a free one, reported once bound)."""
    allow_hosts: tuple[str, ...] = ()
    """Further names the console is reached by (its Host header), e.g. when it listens on 0.0.0.0."""
    token: str | None = None
    """Bearer token for the gRPC server; the console sees exactly this token's tenant."""
    tls: TLS | None = None
    """TLS settings for the gRPC channel, or None for plaintext."""
    allow_writes: bool = False
    """Show write actions and accept POSTs; without it the console is read-only."""
    metrics_url: str | None = None
    """The server's Prometheus endpoint (http://host:port/metrics) for the health page."""
    metrics_interval_seconds: float = 5.0
    """How often the health page's sampler scrapes ``metrics_url``."""
    timeout_seconds: float = 10.0
    """Deadline of each gRPC call."""


class HttpError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


# One mapping from the API's errors to HTTP statuses, applied once in the middleware.
_STATUS_OF: tuple[tuple[type[CairnError], int], ...] = (
    (InvalidArgument, 400),
    (NotFound, 404),
    (AlreadyExists, 409),
    (Conflict, 409),
    (FailedPrecondition, 409),
    (ResourceExhausted, 413),
    (Unauthenticated, 502),
    (Unavailable, 503),
    (DeadlineExceeded, 504),
)


def _http_status(err: CairnError) -> int:
    for kind, status in _STATUS_OF:
        if isinstance(err, kind):
            return status
    return 502


def _allowed_hosts(host: str, port: int, extra: tuple[str, ...] = ()) -> set[str]:
    hosts = {f"{host}:{port}", f"[{host}]:{port}"}
    for name in extra:
        hosts |= {name, f"{name}:{port}"}
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        hosts |= {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
    return hosts


# Metadata travels as a protobuf Struct, whose numbers are doubles.
_MAX_EXACT_INT = 2**53 - 1


def _check_exact_ints(value: Any) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _check_exact_ints(v)
    elif isinstance(value, list):
        for v in value:
            _check_exact_ints(v)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_EXACT_INT:
        raise HttpError(400, f"metadata filter: {value} is beyond 2**53 and cannot be matched exactly")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    """The running console: its config, gRPC client, health sampler and CSRF token."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.csrf_token = secrets.token_urlsafe(32)
        self.client: AsyncCheckpointClient | None = None
        self.session: aiohttp.ClientSession | None = None
        self.health = HealthSampler(config.metrics_url, config.metrics_interval_seconds)
        self.port = config.listen_port
        self._state_slots = asyncio.Semaphore(MAX_STATE_REQUESTS)
        self._hosts = _allowed_hosts(config.listen_host, self.port, config.allow_hosts)
        self._index: str | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    async def _startup(self, app: web.Application) -> None:
        # grpc.aio binds a channel to the loop it is created on: create it on aiohttp's.
        self.client = AsyncCheckpointClient(
            self.config.target, token=self.config.token, tls=self.config.tls,
            timeout_seconds=self.config.timeout_seconds,
        )
        self.session = aiohttp.ClientSession()
        await self.health.start(self.session)

    async def _cleanup(self, app: web.Application) -> None:
        await self.health.aclose()
        if self.session:
            await self.session.close()
        if self.client:
            await self.client.aclose()

    def build(self) -> web.Application:
        """The aiohttp application; routes are listed here, one per page or action."""
        app = web.Application(middlewares=[self._guard], client_max_size=1 << 20)
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        app.router.add_get("/", self.index)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/api/config", self.api_config)
        app.router.add_get("/api/threads", self.api_threads)
        app.router.add_get("/api/timeline", self.api_timeline)
        app.router.add_get("/api/checkpoint", self.api_checkpoint)
        app.router.add_get("/api/state", self.api_state)
        app.router.add_get("/api/health", self.api_health)
        app.router.add_get("/api/runs", self.api_runs)
        app.router.add_get("/api/run", self.api_run)
        for name in ("fork", "new-head", "delete", "clear", "prune", "cancel-run"):
            app.router.add_post(f"/api/actions/{name}", self.api_action)
        return app

    # -- security -------------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            self._check_host(request)
            if request.method not in ("GET", "HEAD"):
                self._check_write(request)
            response = await handler(request)
        except HttpError as err:
            response = web.json_response({"error": err.message, "reason": err.reason}, status=err.status)
        except web.HTTPException as err:  # aiohttp's own: no such route, method not allowed
            response = web.json_response({"error": err.reason, "reason": ""}, status=err.status)
        except CairnError as err:
            response = web.json_response(
                {"error": err.message, "reason": err.reason, "code": err.code.name}, status=_http_status(err)
            )
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def _check_host(self, request: web.Request) -> None:
        if request.host not in self._hosts:
            raise HttpError(403, f"unexpected Host header {request.host!r}: open the console at its own address, "
                                 "or name this host with `cairn console --allow-host`")

    def _check_write(self, request: web.Request) -> None:
        if not self.config.allow_writes:
            raise HttpError(403, "this console is read-only: start it with `cairn console --allow-writes`",
                            "READ_ONLY")
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), self.csrf_token.encode()):
            raise HttpError(403, f"missing or wrong {CSRF_HEADER} header: reload the page", "CSRF")
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise HttpError(403, f"cross-origin request from {origin!r} refused", "CSRF")
        if request.content_type != "application/json":
            raise HttpError(415, "send actions as application/json")

    # -- helpers -------------------------------------------------------------------------------------

    @property
    def _client(self) -> AsyncCheckpointClient:
        assert self.client is not None, "the console has not started"
        return self.client

    @staticmethod
    def _param(request: web.Request, name: str, *, required: bool = False, max_len: int = 4096) -> str:
        value = request.query.get(name, "")
        if required and not value:
            raise HttpError(400, f"query parameter {name!r} is required")
        if len(value) > max_len:
            raise HttpError(400, f"query parameter {name!r} is longer than {max_len} characters")
        return value

    @staticmethod
    def _page_size(request: web.Request, default: int, largest: int) -> int:
        try:
            size = int(request.query.get("page_size", str(default)))
        except ValueError:
            raise HttpError(400, "page_size must be an integer") from None
        if not 1 <= size <= largest:
            raise HttpError(400, f"page_size must be 1..{largest}")
        return size

    @staticmethod
    def _metadata_filter(request: web.Request) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        raw = request.query.get("metadata", "").strip()
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                raise HttpError(400, f"metadata filter is not JSON: {exc}") from None
            if not isinstance(parsed, dict):
                raise HttpError(400, 'metadata filter must be a JSON object, e.g. {"status": "failed"}')
            _check_exact_ints(parsed)
            out.update(parsed)
        status = request.query.get("status", "").strip()
        if status:
            out["status"] = status
        return out or None

    # -- pages ---------------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        if self._index is None:
            self._index = (resources.files(__package__) / "static" / "index.html").read_text("utf-8")
        html = self._index.replace("{{CSRF_TOKEN}}", self.csrf_token)
        return web.Response(text=html, content_type="text/html")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC_FILES:
            raise HttpError(404, f"no static file {name!r}")
        body = (resources.files(__package__) / "static" / name).read_bytes()
        return web.Response(body=body, content_type=_STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    async def api_config(self, request: web.Request) -> web.Response:
        return web.json_response({
            "target": self.config.target,
            "allow_writes": self.config.allow_writes,
            "health": bool(self.config.metrics_url),
        })

    async def api_threads(self, request: web.Request) -> web.Response:
        size = self._page_size(request, 50, MAX_PAGE_SIZE)
        page = await views.threads_page(
            self._client,
            page_size=size,
            page_token=self._param(request, "page_token"),
            metadata_filter=self._metadata_filter(request),
            prefix=self._param(request, "prefix", max_len=1024),
        )
        return web.json_response(page)

    async def api_timeline(self, request: web.Request) -> web.Response:
        thread = self._param(request, "thread_id", required=True)
        size = self._page_size(request, views.TIMELINE_PAGE_SIZE, views.TIMELINE_PAGE_SIZE)
        return web.json_response(
            await views.timeline_page(self._client, thread, self._param(request, "page_token"), size))

    async def api_checkpoint(self, request: web.Request) -> web.Response:
        async with self._state_slots:
            view = await views.checkpoint_view(
                self._client, self._param(request, "thread_id", required=True), self._param(request, "ns"),
                self._param(request, "id"),
            )
        return web.json_response(view)

    async def api_state(self, request: web.Request) -> web.Response:
        thread, ns, cp = (self._param(request, "thread_id", required=True), self._param(request, "ns"),
                          self._param(request, "id", required=True))
        async with self._state_slots:
            raw, state_type = await views.state_bytes(self._client, thread, ns, cp)
        ext = re.sub(r"[^a-z0-9]+", "-", (state_type or "json").lower()).strip("-") or "bin"
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{thread}-{cp}")[:200]
        return web.Response(
            body=raw,
            content_type="application/json" if ext == "json" else "application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}.{ext}"'},
        )

    async def api_health(self, request: web.Request) -> web.Response:
        if self.health.url and self.session and not self.health.samples:
            await self.health.scrape(self.session)
        return web.json_response(self.health.report())

    async def api_runs(self, request: web.Request) -> web.Response:
        size = self._page_size(request, 50, runs.MAX_RUNS_PAGE_SIZE)
        try:
            statuses = runs.parse_statuses(self._param(request, "status", max_len=200))
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        return web.json_response(await runs.runs_page(
            self._client, page_size=size, page_token=self._param(request, "page_token"), statuses=statuses,
            queue=self._param(request, "queue", max_len=1024), thread_id=self._param(request, "thread_id"),
        ))

    async def api_run(self, request: web.Request) -> web.Response:
        run_id = self._param(request, "run_id", required=True)
        async with self._state_slots:  # input and output may each be a whole state
            view = await runs.run_view(self._client, run_id)
        return web.json_response(view)

    # -- actions (POST, --allow-writes only) ----------------------------------------------------------

    async def api_action(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise HttpError(400, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object")

        def field(name: str, *, required: bool = True) -> str:
            value = body.get(name, "")
            if not isinstance(value, str) or (required and not value):
                raise HttpError(400, f"field {name!r} must be a non-empty string")
            return value

        name = request.path.rsplit("/", 1)[-1]
        client = self._client
        if name == "fork":
            result = await actions.fork_thread(
                client, field("thread_id"), field("ns", required=False), field("id"), field("target_thread_id"))
        elif name == "new-head":
            result = await actions.new_head(client, field("thread_id"), field("ns", required=False), field("id"))
        elif name == "delete":
            result = await actions.delete_checkpoint(
                client, field("thread_id"), field("ns", required=False), field("id"))
        elif name == "clear":
            result = await actions.clear_thread(client, field("thread_id"))
        elif name == "cancel-run":
            result = await runs.cancel_run(client, field("run_id"))
        else:
            keep = body.get("keep_latest")
            if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
                raise HttpError(400, "keep_latest must be a positive integer")
            result = await actions.prune_thread(client, field("thread_id"), keep)
        log.info("console: %s %s", name, {k: v for k, v in body.items() if k != "state"})
        return web.json_response(result)


async def run(config: ConsoleConfig, ready: Callable[[str], None] | None = None) -> None:
    """Serve the console until cancelled; ``ready`` gets its URL once the socket is bound."""
    console = Console(config)
    runner = web.AppRunner(console.build(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.listen_host, config.listen_port)
    await site.start()
    if config.listen_port == 0:
        console.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        console._hosts = _allowed_hosts(config.listen_host, console.port, config.allow_hosts)
    host = f"[{config.listen_host}]" if ":" in config.listen_host else config.listen_host
    url = f"http://{host}:{console.port}/"
    if ready:
        ready(url)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
