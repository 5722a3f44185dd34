"""Sign-in throttling per client address, and sign-out that revokes the session itself
(an old cookie is refused afterwards, on this instance and, through Redis, on others)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis

from nemorouter.gateway.ui_session import COOKIE
from nemorouter.gateway.ui_throttle import FREE_FAILURES, MAX_WAIT_S, QUIET_S, LoginThrottle
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from nemorouter.testing.processes import serve_process
from tests.services import unavailable

from .conftest import MASTER_KEY
from .test_session import sign_in

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def waits(throttle: LoginThrottle, address: str) -> int | None:
    """The retry-after the throttle answers for `address`, or None when it may try."""
    try:
        throttle.check(address)
    except Exception as refused:
        assert getattr(refused, "status", None) == 429
        return int(refused.headers["retry-after"])  # type: ignore[attr-defined]
    return None


def test_failures_beyond_the_free_ones_double_the_wait() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock)
    for _ in range(FREE_FAILURES):
        assert waits(throttle, "1.2.3.4") is None
        throttle.failed("1.2.3.4")
    assert waits(throttle, "1.2.3.4") is None
    expected = 1
    for _ in range(12):
        throttle.failed("1.2.3.4")
        assert waits(throttle, "1.2.3.4") == min(expected, MAX_WAIT_S)
        assert waits(throttle, "5.6.7.8") is None  # other addresses are not held up
        clock.now += min(expected, MAX_WAIT_S)
        assert waits(throttle, "1.2.3.4") is None
        expected *= 2
    throttle.succeeded("1.2.3.4")
    throttle.failed("1.2.3.4")
    assert waits(throttle, "1.2.3.4") is None  # a success starts the count over


def test_the_table_is_bounded_and_forgets_quiet_addresses() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock, max_addresses=100)
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) == 100
    for _ in range(FREE_FAILURES + 1):
        throttle.failed("9.9.9.9")
    assert waits(throttle, "9.9.9.9") == 1
    clock.now += QUIET_S + 1
    assert waits(throttle, "9.9.9.9") is None
    assert len(throttle) == 99


def test_sign_in_answers_429_after_repeated_failures(dash_gateway: BackgroundGateway) -> None:
    base = dash_gateway.url
    for _ in range(FREE_FAILURES + 1):
        assert sign_in(base, "sk-wrong-guess-000").status_code == 401
    # Even the right key is not looked at while the address must wait.
    held = sign_in(base)
    assert held.status_code == 429 and held.headers["retry-after"] == "1"
    assert "set-cookie" not in held.headers
    assert sign_in(base, "sk-wrong-guess-001").status_code == 429


def test_an_old_cookie_is_refused_after_sign_out(dash_gateway: BackgroundGateway) -> None:
    base = dash_gateway.url
    cookie = sign_in(base).cookies[COOKIE]
    old = {COOKIE: cookie}
    assert httpx.get(f"{base}/admin/keys", cookies=old).status_code == 200
    assert httpx.post(f"{base}/ui/logout", cookies=old, follow_redirects=False).status_code == 303
    # Replaying the cookie the browser was told to drop:
    assert httpx.get(f"{base}/admin/keys", cookies=old).status_code == 401
    assert httpx.get(f"{base}/ui", cookies=old, follow_redirects=False).status_code == 303
    # A new sign-in is a new session.
    assert httpx.get(f"{base}/admin/keys", cookies=sign_in(base).cookies).status_code == 200


@pytest.mark.timeout(120)
def test_sign_out_reaches_every_instance_through_redis(
    sim: SimulatedProvider, tmp_path: Path
) -> None:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        unavailable("Redis", str(exc))

    def config(name: str) -> dict[str, object]:
        return {
            "settings": {"master_key": MASTER_KEY, "redis_url": REDIS_URL,
                         "database_url": f"sqlite:///{tmp_path}/{name}.db"},
            "providers": {"sim": {"type": "openai-compatible", "base_url": sim.base_url}},
            "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "sim"}],
        }  # fmt: skip

    with (
        serve_process(config("a"), tmp_path, "a") as (_, url_a),
        serve_process(config("b"), tmp_path, "b") as (_, url_b),
    ):
        old = {COOKIE: sign_in(url_a).cookies[COOKIE]}
        assert httpx.get(f"{url_b}/admin/keys", cookies=old).status_code == 200
        out = httpx.post(f"{url_a}/ui/logout", cookies=old, follow_redirects=False)
        assert out.status_code == 303
        assert httpx.get(f"{url_b}/admin/keys", cookies=old).status_code == 401
        assert httpx.get(f"{url_a}/admin/keys", cookies=old).status_code == 401
