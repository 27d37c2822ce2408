"""The failed-login throttle's arithmetic, on a fake clock."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from server.admin.auth import _address
from server.admin.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_gets_five_failures_then_one_every_twelve_seconds() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock)
    for _ in range(5):
        assert throttle.retry_after("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 12
    assert throttle.retry_after("10.0.0.2") == 0  # another address is not held back
    clock.now += 11.5
    assert throttle.retry_after("10.0.0.1") == 1
    clock.now += 0.5
    assert throttle.retry_after("10.0.0.1") == 0


def test_failures_spread_over_many_addresses_meet_the_overall_limit() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock)
    for i in range(30):
        throttle.failed(f"10.0.1.{i}")
    assert throttle.retry_after("10.0.2.1") == 2
    clock.now += 2
    assert throttle.retry_after("10.0.2.1") == 0


def test_an_ipv6_host_is_throttled_as_its_slash_64() -> None:
    def address(host: str) -> str:
        return _address(HTTPConnection({"type": "http", "client": (host, 1234), "headers": []}))

    assert address("2001:db8:1:2::5") == address("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address("2001:db8:1:3::5") != address("2001:db8:1:2::5")
    assert address("192.0.2.7") == "192.0.2.7"
