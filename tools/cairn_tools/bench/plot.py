"""--plot FILE.png: latency distribution over time (matplotlib, the `bench` extra)."""

from __future__ import annotations

from .report import Merged

MISSING = (
    "--plot needs matplotlib, which is not installed: pip install 'cairn-checkpoint[bench]' (or pip install matplotlib)"
)


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# Fewer ops than this in a window and its "p99" would be one of its few slowest ops, i.e. its max: not drawn.
MIN_OPS_FOR_P99 = 100


def _windows(
    ts: list[float], ns: list[int], width: float, seconds: float
) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
    """Per window of `width` seconds: (centre, p50 ms, p99 ms or NaN, max ms, ops/s)."""
    buckets: dict[int, list[int]] = {}
    for t, v in zip(ts, ns):
        buckets.setdefault(int(t / width), []).append(v)
    xs, p50, p99, mx, rate = [], [], [], [], []
    for b in sorted(buckets):
        vals = sorted(buckets[b])
        n = len(vals)
        xs.append((b + 0.5) * width)
        p50.append(vals[(n - 1) // 2] / 1e6)
        p99.append(vals[min(n - 1, int(n * 0.99))] / 1e6 if n >= MIN_OPS_FOR_P99 else float("nan"))
        mx.append(vals[-1] / 1e6)
        rate.append(_per_second(n, b, width, seconds))
    return xs, p50, p99, mx, rate


def _per_second(n: int, window: int, width: float, seconds: float) -> float:
    """`n` events in window number `window`, per second; NaN for a last window cut too short to say."""
    span = min(width, seconds - window * width)  # the last window may be cut short by the end of the run
    return n / span if span > width * 0.2 else float("nan")


def plot(m: Merged, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    per_op: dict[int, tuple[list[float], list[int]]] = {}
    for offset, t, ns, op in m.samples:
        for ti, v, o in zip(t, ns, op):
            entry = per_op.setdefault(o, ([], []))
            entry[0].append(ti + offset)
            entry[1].append(v)
    fig, (ax_lat, ax_rate) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True, height_ratios=[3, 1.3])
    width = max(m.seconds / 60.0, 0.25)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, op_index in enumerate(sorted(per_op)):
        name = m.op_order[op_index] if op_index < len(m.op_order) else f"op{op_index}"
        ts, ns = per_op[op_index]
        color = colors[i % len(colors)]
        step = max(1, len(ts) // 40_000)  # thin the scatter, not the percentiles
        ax_lat.scatter(ts[::step], [v / 1e6 for v in ns[::step]], s=2, alpha=0.25, color=color, linewidths=0)
        xs, p50, p99, mx, rate = _windows(ts, ns, width, m.seconds)
        ax_lat.plot(xs, p50, color=color, lw=1.6, label=f"{name} p50")
        ax_lat.plot(xs, p99, color=color, lw=1.2, ls="--", label=f"{name} p99")
        ax_lat.plot(xs, mx, color=color, lw=0.8, ls=":", label=f"{name} max")
        ax_rate.plot(xs, rate, color=color, lw=1.4, label=name)
    if m.rate:  # open loop: when did the generator fall behind its schedule (the server could not keep up)?
        late = [0] * (int(m.seconds / width) + 1)
        for t in m.late_t:
            late[min(int(t / width), len(late) - 1)] += 1
        ax_rate.plot([(b + 0.5) * width for b in range(len(late))],
                     [_per_second(n, b, width, m.seconds) for b, n in enumerate(late)],
                     color="red", lw=1.0, ls="--", label="late starts (all ops)")
        ax_rate.axhline(m.rate, color="gray", lw=0.8, ls=":", label=f"--rate {m.rate:g}/s")
        ax_rate.legend(fontsize=8, ncol=4, loc="best")
    ax_lat.set_yscale("log")
    # Ticks at 1-2-5 steps, labelled as plain milliseconds: a run's latencies often span less than a decade.
    ax_lat.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax_lat.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_lat.yaxis.set_minor_formatter(NullFormatter())
    ax_lat.set_ylabel(f"latency (ms, log; p99 where a window has {MIN_OPS_FOR_P99}+ ops)")
    ax_lat.grid(True, which="both", alpha=0.3)
    ax_lat.legend(fontsize=8, ncol=3, loc="upper right")
    ax_lat.set_title(title, fontsize=10)
    ax_rate.set_ylabel("ops/s")
    ax_rate.set_xlabel(f"seconds since the end of the warm-up ({width:.2f} s windows)")
    ax_rate.set_ylim(bottom=0)
    ax_rate.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

