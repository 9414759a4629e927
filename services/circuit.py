"""A circuit breaker: after a failure, skip a dependency for a pause instead of waiting on it."""

import time
from collections.abc import Callable


class CircuitBreaker:
    """Open for `pause_s` after each failure; `degraded` until a call succeeds again."""

    def __init__(self, *, pause_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.pause_s = pause_s
        self._clock = clock
        self._open_until = 0.0
        self.degraded = False

    @property
    def open(self) -> bool:
        """Whether calls should skip the dependency right now."""
        return self._clock() < self._open_until

    def failed(self) -> bool:
        """Record a failure; True when this failure is the one that degraded the dependency."""
        first = not self.degraded
        self.degraded = True
        self._open_until = self._clock() + self.pause_s
        return first

    def succeeded(self) -> bool:
        """Record a success; True when this success ends a degradation."""
        recovered = self.degraded
        self.degraded = False
        self._open_until = 0.0
        return recovered
