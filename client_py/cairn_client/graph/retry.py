"""RetryPolicy: how often and how fast a failing node is run again."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Union

RetryOn = Union[type[BaseException], Sequence[type[BaseException]], Callable[[BaseException], bool]]

# Errors that are almost always bugs or bad input: retrying them only repeats the failure.
_NOT_RETRIED = (
    ValueError, TypeError, ArithmeticError, ImportError, LookupError, NameError, SyntaxError,
    RuntimeError, ReferenceError, StopIteration, StopAsyncIteration, OSError,
)


def default_retry_on(exc: BaseException) -> bool:
    """Retry connection errors and anything that is not a programming or input error."""
    if isinstance(exc, ConnectionError):
        return True
    return not isinstance(exc, _NOT_RETRIED)


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a node up to `max_attempts` times in all (1 = no retry).

    The wait before attempt n+1 is ``initial_interval * backoff_factor**(n-1)`` seconds, capped at
    `max_interval`; with `jitter` a random 0-1 s is added. `retry_on` is an exception class, a sequence
    of classes, or a predicate ``fn(exc) -> bool``; errors it rejects fail the run at once.
    """

    max_attempts: int = 3
    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 128.0
    jitter: bool = True
    retry_on: RetryOn = default_retry_on

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_interval < 0 or self.max_interval < 0 or self.backoff_factor < 1:
            raise ValueError("intervals must be >= 0 and backoff_factor >= 1")

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether to run again after `attempt` (1-based) failed with `exc`."""
        if attempt >= self.max_attempts:
            return False
        on = self.retry_on
        if isinstance(on, type) and issubclass(on, BaseException):
            return isinstance(exc, on)
        if isinstance(on, Sequence):
            return isinstance(exc, tuple(on))
        return bool(on(exc))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based)."""
        wait = min(self.max_interval, self.initial_interval * self.backoff_factor ** (attempt - 1))
        return wait + (random.uniform(0, 1) if self.jitter else 0.0)
