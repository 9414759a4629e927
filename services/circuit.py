"""A circuit breaker: after a failure, skip a dependency for a pause instead of waiting on it.

closed --failure--> open (callers fail fast for `pause_s`) --pause over--> one trial call
(everyone else still fails fast) --success--> closed, --failure--> open again.
"""

import math
import time
from collections.abc import Callable

StateListener = Callable[[bool], None]


class CircuitBreaker:
    """Open for `pause_s` after each failure; `degraded` until a call succeeds again.

    `on_change(degraded)` is called on every transition (metrics, logs); the breaker itself
    imports nothing, so every layer can own one.
    """

    def __init__(
        self,
        *,
        pause_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: StateListener | None = None,
    ) -> None:
        self.pause_s = pause_s
        self._clock = clock
        self._open_until = 0.0
        self._on_change = on_change
        self.degraded = False

    @property
    def open(self) -> bool:
        """Whether calls should skip the dependency right now."""
        return self._clock() < self._open_until

    def allow(self) -> bool:
        """Whether this call may go to the dependency: always while closed; while degraded,
        only the one trial call per pause (which keeps the breaker open for the others)."""
        if not self.degraded:
            return True
        now = self._clock()
        if now < self._open_until:
            return False
        self._open_until = now + self.pause_s
        return True

    def retry_after_s(self) -> int:
        """Whole seconds until a trial is let through (at least 1): the Retry-After value."""
        return max(1, math.ceil(self._open_until - self._clock()))

    def failed(self) -> bool:
        """Record a failure; True when this failure is the one that degraded the dependency."""
        first = not self.degraded
        self.degraded = True
        self._open_until = self._clock() + self.pause_s
        if first and self._on_change is not None:
            self._on_change(True)
        return first

    def succeeded(self) -> bool:
        """Record a success; True when this success ends a degradation."""
        recovered = self.degraded
        self.degraded = False
        self._open_until = 0.0
        if recovered and self._on_change is not None:
            self._on_change(False)
        return recovered
