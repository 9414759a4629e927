"""The circuit breaker: open for a pause after a failure, degraded until a success."""

from services.circuit import CircuitBreaker


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_failure_opens_the_breaker_for_the_pause_only() -> None:
    clock = _Clock()
    breaker = CircuitBreaker(pause_s=2.0, clock=clock)

    assert breaker.failed() is True
    assert breaker.open
    assert breaker.degraded
    clock.now += 1.9
    assert breaker.open
    clock.now += 0.2
    assert not breaker.open
    assert breaker.degraded


def test_only_the_first_failure_and_the_first_success_report_a_change() -> None:
    breaker = CircuitBreaker(pause_s=1.0, clock=_Clock())

    assert [breaker.failed(), breaker.failed()] == [True, False]
    assert [breaker.succeeded(), breaker.succeeded()] == [True, False]
    assert not breaker.open
    assert not breaker.degraded


def test_after_the_pause_one_trial_passes_and_the_others_still_fail_fast() -> None:
    clock = _Clock()
    breaker = CircuitBreaker(pause_s=2.0, clock=clock)
    assert breaker.allow()
    breaker.failed()

    assert not breaker.allow()
    clock.now += 2.1
    assert [breaker.allow(), breaker.allow(), breaker.allow()] == [True, False, False]
    clock.now += 2.1
    assert breaker.allow()  # the trial never reported back: another one, one pause later


def test_retry_after_counts_whole_seconds_to_the_next_trial() -> None:
    clock = _Clock()
    breaker = CircuitBreaker(pause_s=2.5, clock=clock)
    breaker.failed()

    assert breaker.retry_after_s() == 3
    clock.now += 2.4
    assert breaker.retry_after_s() == 1


def test_listeners_hear_each_transition_once() -> None:
    heard: list[bool] = []
    breaker = CircuitBreaker(pause_s=1.0, clock=_Clock(), on_change=heard.append)

    breaker.failed()
    breaker.failed()
    breaker.succeeded()
    breaker.succeeded()

    assert heard == [True, False]
