"""The registry of job kinds and their policies."""

import random
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: base * factor**(attempt-1), capped, with +/- jitter (a fraction)."""

    base: float = 60
    factor: float = 2
    cap: float = 600
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        """Seconds to wait before the attempt after `attempt` (1-based) failed."""
        raw = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        if self.jitter:
            raw *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, raw)


def exponential(base=60, cap=600, factor=2, jitter=0.1) -> Backoff:
    return Backoff(base=base, factor=factor, cap=cap, jitter=jitter)


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Callable
    max_attempts: int = 3
    backoff: Backoff = field(default_factory=Backoff)
    concurrency: int | None = None
    rate_per_minute: int | None = None
    schedulable: bool = False
    # A DRF Serializer class that validates and normalises params (API, submit()).
    params_serializer: type | None = None
    slice_seconds: float | None = None
    title: str = ""
    # Named steps shown by the pages; a handler reports the current one with ctx.progress(step=number).
    steps: tuple = ()

    @property
    def limited(self):
        return bool(self.concurrency or self.rate_per_minute)


_KINDS: dict[str, JobKind] = {}


def job_kind(
    name,
    *,
    max_attempts=3,
    backoff=None,
    concurrency=None,
    rate_per_minute=None,
    schedulable=False,
    params=None,
    slice_seconds=None,
    title="",
    steps=(),
):
    """Register the decorated function as the handler of job kind `name`."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")

    def register(handler):
        existing = _KINDS.get(name)
        if existing and existing.handler.__qualname__ != handler.__qualname__:
            raise ValueError(f"job kind {name!r} is already registered by {existing.handler!r}")
        _KINDS[name] = JobKind(
            name=name,
            handler=handler,
            max_attempts=max_attempts,
            backoff=backoff or Backoff(),
            concurrency=concurrency,
            rate_per_minute=rate_per_minute,
            schedulable=schedulable,
            params_serializer=params,
            slice_seconds=slice_seconds,
            title=title or name,
            steps=tuple(steps),
        )
        return handler

    return register


def get_kind(name) -> JobKind | None:
    return _KINDS.get(name)


def registered_kinds() -> dict[str, JobKind]:
    return dict(_KINDS)
