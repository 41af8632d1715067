"""Store health from the server's own Prometheus endpoint (``cairn serve --metrics-listen``).

A background task scrapes the endpoint every ``interval_seconds`` and keeps the last ``keep`` samples;
the page draws rates between consecutive samples. Memory stays bounded: each sample holds a handful of
totals, not the scraped text.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger("cairn.console")

# cairn_cache_lookups results that served a read without the cold store.
_HIT_RESULTS = ("hits", "near_hits")


@dataclass(frozen=True)
class Sample:
    """Totals read from one scrape (counters, so rates come from differences between samples)."""

    at: float
    requests: float
    requests_by_code: dict[str, float]
    requests_by_method: dict[str, float]
    cache_hits: float
    cache_misses: float
    state_bytes: dict[str, float]
    backend_errors: dict[str, float]


def parse(text: str, at: float) -> Sample:
    """Sum the metrics the console draws out of one Prometheus text exposition."""
    by_code: dict[str, float] = {}
    by_method: dict[str, float] = {}
    hits = misses = 0.0
    state_bytes: dict[str, float] = {}
    backend: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "cairn_rpc_requests_total":
                code, method = s.labels.get("code", ""), s.labels.get("method", "")
                by_code[code] = by_code.get(code, 0.0) + s.value
                by_method[method] = by_method.get(method, 0.0) + s.value
            elif s.name == "cairn_cache_lookups_total":
                if s.labels.get("result") in _HIT_RESULTS:
                    hits += s.value
                elif s.labels.get("result") == "misses":
                    misses += s.value
            elif s.name == "cairn_state_bytes_total":
                state_bytes[s.labels.get("kind", "")] = s.value
            elif s.name == "cairn_backend_errors_total":
                backend[s.labels.get("backend", "")] = s.value
    return Sample(at, sum(by_code.values()), by_code, by_method, hits, misses, state_bytes, backend)


def _rate(new: float, old: float, seconds: float) -> float:
    # A counter that went down means the server restarted: count from zero rather than report a negative rate.
    delta = new - old if new >= old else new
    return delta / seconds if seconds > 0 else 0.0


def point(prev: Sample, cur: Sample) -> dict[str, Any]:
    """What happened between two samples, per second."""
    dt = cur.at - prev.at
    lookups = (cur.cache_hits - prev.cache_hits) + (cur.cache_misses - prev.cache_misses)
    errors = {
        code: _rate(v, prev.requests_by_code.get(code, 0.0), dt)
        for code, v in cur.requests_by_code.items() if code != "OK"
    }
    return {
        "at": cur.at,
        "requests_per_second": _rate(cur.requests, prev.requests, dt),
        "errors_per_second": errors,
        "cache_hit_rate": ((cur.cache_hits - prev.cache_hits) / lookups) if lookups > 0 else None,
        "state_bytes_per_second": {
            kind: _rate(v, prev.state_bytes.get(kind, 0.0), dt) for kind, v in cur.state_bytes.items()
        },
    }


@dataclass
class HealthSampler:
    """Scrapes ``url`` in the background while the console runs."""

    url: str | None
    interval_seconds: float = 5.0
    keep: int = 120
    samples: deque[Sample] = field(default_factory=deque)
    last_error: str | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self, session: aiohttp.ClientSession) -> None:
        if self.url:
            self._task = asyncio.create_task(self._run(session))

    async def aclose(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def scrape(self, session: aiohttp.ClientSession) -> None:
        """Take one sample now (also called by the page so the first view is not empty)."""
        assert self.url
        try:
            timeout = aiohttp.ClientTimeout(total=min(self.interval_seconds, 5.0))
            async with session.get(self.url, timeout=timeout) as resp:
                resp.raise_for_status()
                text = await resp.text()
            sample = parse(text, time.time())
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            self.last_error = f"{self.url}: {exc.__class__.__name__}: {exc}"
            log.warning("console: metrics scrape failed: %s", self.last_error)
            return
        self.last_error = None
        self.samples.append(sample)
        while len(self.samples) > self.keep:
            self.samples.popleft()

    async def _run(self, session: aiohttp.ClientSession) -> None:
        while True:
            await self.scrape(session)
            await asyncio.sleep(self.interval_seconds)

    def report(self) -> dict[str, Any]:
        """Series of per-second rates, and the latest totals."""
        items = list(self.samples)
        series = [point(a, b) for a, b in itertools.pairwise(items)]
        latest = items[-1] if items else None
        return {
            "configured": bool(self.url),
            "url": self.url,
            "error": self.last_error,
            "interval_seconds": self.interval_seconds,
            "series": series,
            "totals": None if latest is None else {
                "requests": latest.requests,
                "requests_by_code": latest.requests_by_code,
                "requests_by_method": latest.requests_by_method,
                "cache_hits": latest.cache_hits,
                "cache_misses": latest.cache_misses,
                "state_bytes": latest.state_bytes,
                "backend_errors": latest.backend_errors,
            },
        }
