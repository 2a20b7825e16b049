"""Failed-login limits and the CPU ration of password checks, on a clock the test moves."""

from __future__ import annotations

import pytest

from app.auth.login_limits import CHECK_BURST_SECONDS, LoginLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def limits(clock, per_client=3, per_account=5, window=60.0, share=0.25):
    return LoginLimits(per_client, per_account, window, share, clock=clock)


def test_a_client_is_refused_after_its_failures_until_the_oldest_leaves_the_window(clock):
    guard = limits(clock)
    for second in range(3):
        clock.now += 1
        assert guard.refusal("10.0.0.1", f"name{second}") is None
        guard.failed("10.0.0.1", f"name{second}")
    assert guard.refusal("10.0.0.1", "other") == pytest.approx(60 - 2)  # the first failure, 2 s ago, counts 58 s more
    assert guard.refusal("10.0.0.2", "other") is None  # another client is not held up
    clock.now += 58.5
    assert guard.refusal("10.0.0.1", "other") is None


def test_an_account_is_refused_after_failures_from_any_clients(clock):
    guard = limits(clock)
    for client in range(5):
        guard.failed(f"10.0.0.{client}", "ed")
    assert guard.refusal("10.9.9.9", "ed") == pytest.approx(60)
    assert guard.refusal("10.9.9.9", "bob") is None


def test_unknown_and_known_names_are_counted_alike(clock):
    guard = limits(clock, per_client=100, per_account=2)
    for name in ("ed", "no-such-user"):
        guard.failed("a", name)
        guard.failed("b", name)
    assert guard.refusal("c", "ed") == guard.refusal("c", "no-such-user")


def test_password_checks_are_rationed_in_cpu_time(clock):
    guard = limits(clock, per_client=1000, per_account=1000, share=0.25)
    checks = 0
    while guard.refusal("a", f"n{checks}") is None:
        guard.spent(0.2)  # one scrypt check
        checks += 1
    assert checks == round(CHECK_BURST_SECONDS / 0.2)  # the burst: five checks back to back
    wait = guard.refusal("a", "next")
    assert wait == pytest.approx(0.001)  # the budget is exactly spent: it refills at once
    clock.now += 10  # ten seconds at a quarter of a core pay for 2.5 s of checks, capped at the burst
    assert guard.refusal("a", "next") is None
    guard.spent(3.0)  # a check far over the ration puts it in debt: the next waits for the debt to be repaid
    assert guard.refusal("a", "next") == pytest.approx((3.0 - CHECK_BURST_SECONDS) / 0.25 + 0.001)


def test_cheap_checks_are_not_held_up(clock):
    guard = limits(clock, per_client=1000, per_account=1000)
    for attempt in range(500):
        assert guard.refusal("a", f"n{attempt}") is None
        guard.spent(0.0001)
