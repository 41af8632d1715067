"""Merging per-process results, and the two outputs: a text summary and ghz-shaped JSON.

JSON field names follow ghz where they apply (count, total, average, fastest, slowest, rps,
latencyDistribution [{percentage, latency}], histogram [{mark, count, frequency}] (marks in seconds, as
ghz), statusCodeDistribution, errorDistribution, endReason ("timeout" when --duration ended the run,
"normal" when --requests did), and with --details every measured call as details [{timestamp, latency,
error, status, operation}]; durations in nanoseconds); one such object per operation under "operations",
the overall figures at the top level.
Fields ghz does not have are camelCase extras (bytesSent, compressionRatio, clientCpu, ...).
"""

from __future__ import annotations

import datetime as _dt
from array import array
from dataclasses import dataclass, field
from typing import Any

from .loadgen import BATCH_LOAD, LATE_NS, SAVE, SAVE_STREAM, OpStats, code_name

PERCENTILES = (10, 25, 50, 75, 90, 95, 99, 99.9)
CLIENT_BOUND_PERCENT = 90.0


@dataclass
class Merged:
    ops: dict[str, OpStats]
    start: float
    end: float
    cpu_user: float
    cpu_sys: float
    procs: int
    rate: float | None = None  # --rate, all processes together
    late: int = 0  # ops that started more than loadgen.LATE_NS after they were due
    max_lag_ns: int = 0
    samples: list[tuple[float, array, array, array]] = field(default_factory=list)  # (offset s, t, ns, op)
    sample_codes: list[array] = field(default_factory=list)  # gRPC status code of each sample, 0 = OK
    late_t: list[float] = field(default_factory=list)  # when each late op started (s since the start)
    op_order: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-9)

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_user + self.cpu_sys

    @property
    def cpu_percent(self) -> float:
        """Client CPU as a percentage of one core, all processes together."""
        return 100.0 * self.cpu_seconds / self.seconds

    def overall(self) -> OpStats:
        total = OpStats()
        for s in self.ops.values():
            total.merge(s)
        return total


def merge(results: list[dict[str, Any]]) -> Merged:
    ops: dict[str, OpStats] = {}
    order: list[str] = []
    for r in results:
        for op in r["op_order"]:
            if op not in order:
                order.append(op)
        for op, d in r["ops"].items():
            ops.setdefault(op, OpStats()).merge(OpStats.from_dict(d))
    start = min(r["start"] for r in results)
    m = Merged(
        ops={op: ops[op] for op in order if op in ops},
        start=start,
        end=max(r["end"] for r in results),
        cpu_user=sum(r["cpu_user"] for r in results),
        cpu_sys=sum(r["cpu_sys"] for r in results),
        procs=len(results),
        rate=sum(r["rate"] for r in results) if results[0].get("rate") else None,
        late=sum(r.get("late", 0) for r in results),
        max_lag_ns=max(r.get("max_lag_ns", 0) for r in results),
        op_order=order,
    )
    for r in results:
        if r.get("samples"):
            t, ns, op = array("d"), array("q"), array("B")
            t.frombytes(r["samples"][0])
            ns.frombytes(r["samples"][1])
            op.frombytes(r["samples"][2])
            # map this process's op indices onto the merged order
            remap = bytes(order.index(o) for o in r["op_order"])
            if remap != bytes(range(len(remap))):
                op = array("B", (remap[i] for i in op))
            m.samples.append((r["start"] - start, t, ns, op))
            codes = array("B")
            if len(r["samples"]) > 3:
                codes.frombytes(r["samples"][3])
            m.sample_codes.append(codes)
            late = array("d")
            late.frombytes(r["late_t"])
            m.late_t += (r["start"] - start + x for x in late)
    return m


def ghz_block(st: OpStats, seconds: float) -> dict[str, Any]:
    h = st.hist
    return {
        "count": st.count,
        "total": int(seconds * 1e9),
        "average": int(h.mean),
        "fastest": h.min,
        "slowest": h.max,
        "rps": st.count / seconds,
        "latencyDistribution": [{"percentage": p, "latency": h.percentile(p)} for p in PERCENTILES],
        "histogram": [
            {"mark": mark / 1e9, "count": n, "frequency": n / h.count} for mark, n in h.buckets()
        ],
        "statusCodeDistribution": dict(st.status),
        "errorDistribution": dict(st.error_dist),
        "errors": st.errors,
        "bytesSent": st.bytes_sent,
        "bytesReceived": st.bytes_received,
    }


def compression(st: OpStats) -> float | None:
    return st.state_bytes / st.stored_bytes if st.stored_bytes else None


def details(m: Merged) -> list[dict[str, Any]]:
    """ghz's details: one entry per measured call, in the order they ended (needs record_samples)."""
    rows: list[tuple[float, int, str, int]] = []
    for (offset, t, ns, op), codes in zip(m.samples, m.sample_codes):
        for i in range(len(t)):
            rows.append((offset + t[i], ns[i], m.op_order[op[i]], codes[i] if i < len(codes) else 0))
    rows.sort(key=lambda r: r[0])
    out = []
    for at, ns, op, code in rows:
        status = code_name(code)
        out.append({
            "timestamp": _dt.datetime.fromtimestamp(m.start + at, _dt.timezone.utc).isoformat(),
            "latency": ns, "error": "" if code == 0 else status, "status": status, "operation": op,
        })
    return out


def to_json(m: Merged, options: dict[str, Any], info: dict[str, Any], *, end_reason: str = "normal",
            with_details: bool = False) -> dict[str, Any]:
    secs = m.seconds
    out: dict[str, Any] = {
        "date": _dt.datetime.fromtimestamp(m.start, _dt.timezone.utc).isoformat(),
        "endReason": end_reason,
        "options": options,
        **ghz_block(m.overall(), secs),
    }
    saves = OpStats()
    for op in (SAVE, SAVE_STREAM):
        if op in m.ops:
            saves.merge(m.ops[op])
    out["compressionRatio"] = compression(saves)
    out["storedBytesPerSave"] = saves.stored_bytes / saves.count if saves.stored_bytes and saves.count else None
    out["clientCpu"] = {
        "userSeconds": round(m.cpu_user, 3),
        "systemSeconds": round(m.cpu_sys, 3),
        "percentOfOneCore": round(m.cpu_percent, 1),
        "procs": m.procs,
        "microsecondsPerOp": round(1e6 * m.cpu_seconds / m.overall().count, 1) if m.overall().count else None,
    }
    out["rate"] = (
        {"target": m.rate, "lateStarts": m.late, "maxScheduleLagNs": m.max_lag_ns} if m.rate else None
    )
    out.update(info)
    ops: dict[str, Any] = {}
    for op, st in m.ops.items():
        block = ghz_block(st, secs)
        if op in (SAVE, SAVE_STREAM):
            block["stateBytes"] = st.state_bytes
            block["storedBytes"] = st.stored_bytes
            block["compressionRatio"] = compression(st)
        if op == BATCH_LOAD:
            block["items"] = st.items
            block["itemsPerSecond"] = st.items / secs
            block["itemErrors"] = st.item_errors
        ops[op] = block
    out["operations"] = ops
    if with_details:
        out["details"] = details(m)
    return out


def fmt_ns(ns: float) -> str:
    if ns < 1_000_000:
        return f"{ns / 1e3:.0f}us"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.2f}ms"
    return f"{ns / 1e9:.2f}s"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def to_text(m: Merged, header: str, states: str) -> str:
    secs = m.seconds
    lines = [header, f"  states: {states}", ""]
    cols = ("operation", "count", "ops/s", "average", "p50", "p90", "p99", "p99.9", "max", "errors")
    rows = []
    items = list(m.ops.items())
    if len(items) > 1:
        items.append(("all", m.overall()))
    for op, st in items:
        h = st.hist
        rows.append(
            (op, f"{st.count:,}", f"{st.count / secs:,.1f}", fmt_ns(h.mean), fmt_ns(h.percentile(50)),
             fmt_ns(h.percentile(90)), fmt_ns(h.percentile(99)), fmt_ns(h.percentile(99.9)), fmt_ns(h.max),
             f"{st.errors:,}")
        )
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    fmt = "  " + "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    lines.append(fmt.format(*cols))
    lines.extend(fmt.format(*r) for r in rows)
    lines.append("")
    total = m.overall()
    codes = " · ".join(f"{k} {v:,}" for k, v in sorted(total.status.items(), key=lambda kv: -kv[1]))
    lines.append(f"  status codes: {codes or '-'}")
    if total.error_dist:
        lines.append("  errors:")
        for k, v in sorted(total.error_dist.items(), key=lambda kv: -kv[1])[:10]:
            lines.append(f"    {v:>9,}  {k}")
    if m.rate:
        lines.append(
            f"  rate: {m.rate:,.0f}/s asked, {total.count / secs:,.1f}/s done; late starts (every worker still "
            f"busy {LATE_NS / 1e6:g} ms after the op was due): {m.late:,}, max lag {fmt_ns(m.max_lag_ns)}; "
            "a late op's latency counts from when it was due"
        )
        if m.late > 0.01 * max(total.count, 1):
            lines.append("  note: the client fell behind the schedule; raise --concurrency (calls in flight) "
                         "or --procs")
    if BATCH_LOAD in m.ops:
        st = m.ops[BATCH_LOAD]
        lines.append(f"  batch_load: {st.items:,} items ({st.items / secs:,.0f} items/s), {st.item_errors:,} item errors")
    lines.append(
        f"  bytes sent: {fmt_bytes(total.bytes_sent)} ({fmt_bytes(total.bytes_sent / secs)}/s); "
        f"received {fmt_bytes(total.bytes_received)} ({fmt_bytes(total.bytes_received / secs)}/s)"
    )
    saves = OpStats()
    for op in (SAVE, SAVE_STREAM):
        if op in m.ops:
            saves.merge(m.ops[op])
    ratio = compression(saves)
    if ratio:
        n_sized = saves.count - saves.errors
        lines.append(
            f"  compression (server-reported): {fmt_bytes(saves.stored_bytes / max(n_sized, 1))} stored per "
            f"{fmt_bytes(saves.state_bytes / max(n_sized, 1))} state = {ratio:.2f}x"
        )
    elif saves.count:
        lines.append("  compression: the server reported no stored_size_bytes")
    per_proc = m.cpu_percent / m.procs
    lines.append(
        f"  client CPU: {m.cpu_seconds:.1f} s (user {m.cpu_user:.1f} + sys {m.cpu_sys:.1f}) = "
        f"{m.cpu_percent:.0f}% of one core over {m.procs} process{'es' if m.procs > 1 else ''}"
        + (f", {1e6 * m.cpu_seconds / total.count:.0f} us per op" if total.count else "")
    )
    if per_proc >= CLIENT_BOUND_PERCENT:
        lines.append(
            f"  note: each client process used {per_proc:.0f}% of a core; the client may be the bottleneck "
            "(try --procs N, or another machine)"
        )
    return "\n".join(lines)
