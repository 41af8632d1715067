"""Latency histograms (nanoseconds), mergeable across processes.

HdrHistogram (the `hdrhistogram` package: 3 significant digits, 1 us .. 1 h) when it is importable, else a
small log-bucketed histogram with the same ~0.1% relative precision. Exact count, min, max and sum are kept
beside either, so fastest/slowest/average are exact and only percentiles are bucketed.
"""

from __future__ import annotations

import base64
import json
import math
import os

LOWEST_NS = 1_000
HIGHEST_NS = 3_600 * 10**9
SIGNIFICANT_DIGITS = 3


def _hdr_class():
    if os.environ.get("CAIRN_BENCH_HISTOGRAM", "").lower() == "log":
        return None
    try:
        from hdrh.histogram import HdrHistogram
    except ImportError:
        return None
    return HdrHistogram


class _LogBuckets:
    """Buckets of width ~0.1% on a log scale: bucket b holds values in [g^b, g^(b+1)), g = 1.001."""

    _SCALE = 1.0 / math.log1p(0.001)

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def record(self, v: int) -> None:
        b = int(math.log(max(v, 1)) * self._SCALE)
        self.counts[b] = self.counts.get(b, 0) + 1

    def value_at(self, percentile: float, total: int) -> int:
        if not total:
            return 0
        rank = max(1, math.ceil(total * percentile / 100.0))
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return int(math.exp((b + 1) / self._SCALE))  # the bucket's upper edge, like HdrHistogram
        return 0

    def merge_counts(self, counts: dict[int, int]) -> None:
        for b, n in counts.items():
            self.counts[b] = self.counts.get(b, 0) + n


class Histogram:
    """record(ns); count, min, max, mean, percentile(p); merge(); encode()/decode() for another process."""

    def __init__(self) -> None:
        cls = _hdr_class()
        self.kind = "hdr" if cls else "log"
        self._hdr = cls(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS) if cls else None
        self._log = None if cls else _LogBuckets()
        self.count = 0
        self.min = 0
        self.max = 0
        self.sum = 0

    def record(self, ns: int) -> None:
        if ns < 1:
            ns = 1
        if self.count == 0 or ns < self.min:
            self.min = ns
        if ns > self.max:
            self.max = ns
        self.count += 1
        self.sum += ns
        if self._hdr is not None:
            self._hdr.record_value(min(max(ns, LOWEST_NS), HIGHEST_NS))
        else:
            self._log.record(ns)  # type: ignore[union-attr]

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0

    def percentile(self, p: float) -> int:
        if not self.count:
            return 0
        if p >= 100:
            return self.max
        if self._hdr is not None:
            v = int(self._hdr.get_value_at_percentile(p))
        else:
            v = self._log.value_at(p, self.count)  # type: ignore[union-attr]
        return min(max(v, self.min), self.max)

    def _recorded(self) -> list[tuple[int, int]]:
        """(value, count) of every non-empty bucket, by value."""
        if self._hdr is not None:
            return [(int(it.value_iterated_to), int(it.count_at_value_iterated_to))
                    for it in self._hdr.get_recorded_iterator()]
        scale = _LogBuckets._SCALE
        return [(int(math.exp(b / scale)), n) for b, n in sorted(self._log.counts.items())]  # type: ignore[union-attr]

    def buckets(self, n: int = 10) -> list[tuple[int, int]]:
        """ghz's histogram: n + 1 marks spread evenly from fastest to slowest, each with the count of values
        above the previous mark and up to it (values as bucketed, so within ~0.1%)."""
        if not self.count:
            return []
        width = (self.max - self.min) / n
        marks = [int(self.min + width * i) for i in range(n)] + [self.max]
        counts = [0] * len(marks)
        i = 0
        for value, count in self._recorded():
            value = min(max(value, self.min), self.max)  # a bucket's edge may lie just outside the exact range
            while i < len(marks) - 1 and value > marks[i]:
                i += 1
            counts[i] += count
        return list(zip(marks, counts))

    def merge(self, other: Histogram) -> None:
        if other.count == 0:
            return
        if other.kind != self.kind:
            raise ValueError("cannot merge an hdr and a log histogram")
        self.min = other.min if self.count == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.sum += other.sum
        if self._hdr is not None:
            self._hdr.add(other._hdr)
        else:
            self._log.merge_counts(other._log.counts)  # type: ignore[union-attr]

    def encode(self) -> str:
        """A compact text form (HdrHistogram's own base64 encoding, or JSON buckets)."""
        body = self._hdr.encode().decode() if self._hdr is not None else json.dumps(self._log.counts)  # type: ignore[union-attr]
        head = json.dumps([self.kind, self.count, self.min, self.max, self.sum])
        return base64.b64encode(head.encode()).decode() + "." + body

    @classmethod
    def decode(cls, text: str) -> Histogram:
        head_b64, _, body = text.partition(".")
        kind, count, lo, hi, total = json.loads(base64.b64decode(head_b64))
        h = cls()
        if h.kind != kind:
            raise ValueError(f"histogram encoded as {kind}, this process uses {h.kind}")
        h.count, h.min, h.max, h.sum = count, lo, hi, total
        if count:
            if h._hdr is not None:
                h._hdr.decode_and_add(body.encode())
            else:
                h._log.counts = {int(k): v for k, v in json.loads(body).items()}  # type: ignore[union-attr]
        return h
