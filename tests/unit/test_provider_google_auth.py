"""Service-account tokens against the fake OAuth endpoint: caching, refresh, single flight."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nemorouter.config import ConfigError
from nemorouter.providers.google_auth import (
    REFRESH_MARGIN_S,
    ServiceAccountTokens,
    load_credentials_info,
)
from nemorouter.testing import FakeOAuthServer, Fault, SimServiceAccount
from nemorouter.types.upstream import FailureKind, UpstreamFailure


@pytest.fixture(scope="module")
def oauth_server() -> Iterator[FakeOAuthServer]:
    with FakeOAuthServer() as server:
        yield server


@pytest.fixture(scope="module")
def account(oauth_server: FakeOAuthServer) -> SimServiceAccount:
    return oauth_server.create_account()


@pytest.fixture
def oauth(oauth_server: FakeOAuthServer) -> FakeOAuthServer:
    oauth_server.clear()
    oauth_server.latency_ms = 0.0
    oauth_server.expires_in = 3600
    return oauth_server


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_token_is_cached_until_near_expiry(
    oauth: FakeOAuthServer, account: SimServiceAccount
) -> None:
    clock = Clock()
    tokens = ServiceAccountTokens(account.info, clock=clock)
    try:
        first = await tokens.token()
        assert oauth.valid(first)
        assert await tokens.token() == first
        clock.now += 3600 - REFRESH_MARGIN_S - 1  # still inside the margin
        assert await tokens.token() == first
        clock.now += 2  # within google-auth's refresh threshold of expiry
        second = await tokens.token()
        assert second != first and oauth.valid(second)
        assert tokens.refreshes == 2 and oauth.request_count == 2
    finally:
        await tokens.close()


async def test_many_concurrent_callers_share_one_refresh(
    oauth: FakeOAuthServer, account: SimServiceAccount
) -> None:
    oauth.latency_ms = 50  # the refresh is in flight while the others ask
    clock = Clock()
    tokens = ServiceAccountTokens(account.info, clock=clock)
    try:
        got = await asyncio.gather(*(tokens.token() for _ in range(50)))
        assert len(set(got)) == 1 and oauth.request_count == 1
        clock.now += 3600  # expired: again one refresh for all
        got = await asyncio.gather(*(tokens.token() for _ in range(50)))
        assert len(set(got)) == 1 and oauth.request_count == 2
    finally:
        await tokens.close()


async def test_a_cancelled_caller_does_not_cancel_the_refresh(
    oauth: FakeOAuthServer, account: SimServiceAccount
) -> None:
    oauth.latency_ms = 100
    tokens = ServiceAccountTokens(account.info)
    try:
        impatient = asyncio.ensure_future(tokens.token())
        patient = asyncio.ensure_future(tokens.token())
        await asyncio.sleep(0.02)
        impatient.cancel()
        assert oauth.valid(await patient)
    finally:
        await tokens.close()


async def test_invalidated_token_is_replaced(
    oauth: FakeOAuthServer, account: SimServiceAccount
) -> None:
    tokens = ServiceAccountTokens(account.info)
    try:
        first = await tokens.token()
        tokens.invalidate("some-other-token")
        assert await tokens.token() == first
        tokens.invalidate(first)
        assert await tokens.token() != first
    finally:
        await tokens.close()


async def test_refused_and_failing_token_endpoint(
    oauth: FakeOAuthServer, account: SimServiceAccount
) -> None:
    stranger = SimServiceAccount.create(oauth.token_uri)  # key the endpoint does not know
    tokens = ServiceAccountTokens(stranger.info)
    try:
        with pytest.raises(UpstreamFailure) as caught:
            await tokens.token()
        assert caught.value.kind is FailureKind.AUTH  # the deployment's credentials failed
        assert (
            "invalid_grant" in caught.value.message or "account not found" in caught.value.message
        )
    finally:
        await tokens.close()
    oauth.inject(Fault.status(503))
    tokens = ServiceAccountTokens(account.info)
    try:
        with pytest.raises(UpstreamFailure) as caught:
            await tokens.token()
        assert caught.value.status == 503
        assert oauth.valid(await tokens.token())  # the failure is not cached
    finally:
        await tokens.close()


def test_assertion_is_a_signed_jwt_bearer_grant(
    oauth: FakeOAuthServer, account: SimServiceAccount
) -> None:
    from google.auth import jwt

    tokens = ServiceAccountTokens(account.info)
    claims = jwt.decode(tokens._assertion(), certs=account.public_pem, audience=oauth.token_uri)
    assert claims["iss"] == account.email
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600


def test_credentials_from_file_or_inline_json(tmp_path: Path, account: SimServiceAccount) -> None:
    path = account.write(tmp_path / "key.json")
    assert load_credentials_info(str(path), "p")["client_email"] == account.email
    assert load_credentials_info(json.dumps(account.info), "p")["client_email"] == account.email
    with pytest.raises(ConfigError, match="cannot read"):
        load_credentials_info(str(tmp_path / "missing.json"), "providers.v.credentials")
    (tmp_path / "user.json").write_text('{"type": "authorized_user"}')
    assert load_credentials_info(str(tmp_path / "user.json"), "p")["type"] == "authorized_user"
    (tmp_path / "odd.json").write_text('{"type": "api_key"}')
    with pytest.raises(ConfigError, match="not a Google credential file") as caught:
        load_credentials_info(str(tmp_path / "odd.json"), "providers.v.credentials")
    assert caught.value.path == "providers.v.credentials"
