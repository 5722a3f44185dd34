"""Key expiry is judged in UTC whatever the host's time zone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from nemorouter.core.auth import Authenticator
from nemorouter.core.keys import hash_secret, new_secret
from nemorouter.types.errors import GatewayError
from nemorouter.types.keys import KeyRecord, TeamRecord, utcnow

SECRET = new_secret()


class _Repo:
    """Just enough of KeysRepo for the authenticator."""

    def __init__(self, record: KeyRecord) -> None:
        self.record = record

    async def key_by_hash(self, digest: str) -> KeyRecord | None:
        return self.record if digest == self.record.key_hash else None

    async def team(self, team_id: str) -> TeamRecord | None:
        return None


def _key(expires_in: timedelta) -> KeyRecord:
    return KeyRecord(
        id="key_1",
        name="k",
        key_hash=hash_secret(SECRET),
        key_prefix=SECRET[:12],
        expires_at=utcnow() + expires_in,  # naive UTC, as the store keeps it
        created_at=utcnow(),
    )


@pytest.fixture(params=["America/Los_Angeles", "Asia/Tokyo", "UTC"])
def host_zone(request: pytest.FixtureRequest) -> Iterator[str]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


async def test_an_expired_key_is_refused_in_any_host_zone(host_zone: str) -> None:
    auth = Authenticator("sk-test-master-key", _Repo(_key(-timedelta(minutes=1))))  # type: ignore[arg-type]
    with pytest.raises(GatewayError) as refused:
        await auth.resolve(f"Bearer {SECRET}".encode())
    assert refused.value.status == 401 and "expired" in refused.value.message


async def test_a_key_not_yet_expired_works_in_any_host_zone(host_zone: str) -> None:
    auth = Authenticator("sk-test-master-key", _Repo(_key(timedelta(minutes=1))))  # type: ignore[arg-type]
    caller = await auth.resolve(f"Bearer {SECRET}".encode())
    assert caller.key_id == "key_1"
