"""Key administration as a service: create (secret shown once, stored hashed), PATCH each
field and clear it with null, revoke (broadcast), teams and their budgets."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest

from nemorouter.core.auth import Authenticator
from nemorouter.core.key_admin import KeyAdmin
from nemorouter.core.keys import (
    SECRET_PREFIX,
    KeyCreate,
    KeyUpdate,
    TeamCreate,
    decode_input,
)
from nemorouter.store.keys_repo import KeysRepo
from nemorouter.types.errors import GatewayError
from nemorouter.types.keys import KeyRecord

NOW = datetime(2026, 11, 20, 12, 0, 0)
MODELS = ["gemini-2.5-flash", "docs", "auto"]


class Broadcast:
    """Stands in for pipeline.key_changed: records which keys were announced."""

    def __init__(self) -> None:
        self.changed: list[str] = []

    async def __call__(self, key_id: str) -> None:
        self.changed.append(key_id)


@pytest.fixture
def broadcast() -> Broadcast:
    return Broadcast()


@pytest.fixture
def admin(repo: KeysRepo, broadcast: Broadcast) -> KeyAdmin:
    return KeyAdmin(repo, MODELS, broadcast, clock=lambda: NOW)


def body(kind: type[Any], **fields: Any) -> Any:
    """An admin body decoded as the route decodes it."""
    return decode_input(msgspec.json.encode(fields), kind)


async def refused(call: Any) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        await call
    return info.value


async def test_create_key_shows_the_secret_once_and_stores_its_hash(
    admin: KeyAdmin, repo: KeysRepo
) -> None:
    created = await admin.create_key(body(KeyCreate, name="ocr", rpm=60))
    secret = created.secret
    assert secret.startswith(SECRET_PREFIX) and len(secret) > 40
    stored = await repo.key(created.record.id)
    assert stored is not None
    assert stored.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert stored.key_prefix == secret[:12]  # the one prefix rule: "sk-nemo-" + 4
    assert secret not in msgspec.json.encode(stored).decode()
    assert "key" not in created.record.public()  # the record never carries the secret
    assert (stored.name, stored.rpm, stored.created_at) == ("ocr", 60, NOW)
    # The stored hash is the one the authenticator looks secrets up by.
    caller = await Authenticator("sk-master-key-long-enough", repo).resolve(
        f"Bearer {secret}".encode()
    )
    assert caller.key_id == created.record.id
    other = await admin.create_key(body(KeyCreate, name="ocr"))
    assert other.secret != secret and other.record.id != created.record.id


async def test_create_key_checks_team_models_budget_and_expiry(admin: KeyAdmin) -> None:
    error = await refused(admin.create_key(body(KeyCreate, name="k", team_id="team_nope")))
    assert (error.status, error.param) == (400, "team_id")
    error = await refused(admin.create_key(body(KeyCreate, name="k", models=["gpt-9"])))
    assert (error.param, "'gpt-9'" in error.message) == ("models", True)
    error = await refused(admin.create_key(body(KeyCreate, name="k", budget_period="daily")))
    assert error.message == "'budget_period' needs 'budget_usd'."
    past = (NOW - timedelta(seconds=1)).isoformat() + "Z"
    error = await refused(admin.create_key(body(KeyCreate, name="k", expires_at=past)))
    assert error.param == "expires_at"
    created = await admin.create_key(
        body(KeyCreate, name="k", models=["docs", "auto"], budget_usd="2.5", budget_period="daily")
    )
    assert created.record.models == ("docs", "auto")
    assert created.record.budget_pico == 2_500_000_000_000


# field → (a value to set, what the stored record then holds)
PATCHES: dict[str, tuple[Any, Any]] = {
    "models": (["gemini-2.5-flash"], ("gemini-2.5-flash",)),
    "default_tags": (["vision", "eu"], ("vision", "eu")),
    "rpm": (10, 10),
    "tpm": (5000, 5000),
    "budget_usd": ("1.25", 1_250_000_000_000),
    "expires_at": ("2027-01-01T00:00:00+01:00", datetime(2026, 12, 31, 23, 0)),
}
STORED_AS = {"budget_usd": "budget_pico"}


@pytest.mark.parametrize("field", [*PATCHES, "team_id"])
async def test_patch_sets_one_field_then_null_clears_it(
    admin: KeyAdmin, repo: KeysRepo, broadcast: Broadcast, field: str
) -> None:
    team = await admin.create_team(body(TeamCreate, name="t"))
    value, stored_value = PATCHES.get(field, (team.id, team.id))
    record = (await admin.create_key(body(KeyCreate, name="k", rpm=7))).record
    untouched = {"name": "k", "rpm": 7} if field != "rpm" else {"name": "k"}
    column = STORED_AS.get(field, field)

    updated = await admin.update_key(record, body(KeyUpdate, **{field: value}))
    stored = await repo.key(record.id)
    assert stored == updated
    assert getattr(stored, column) == stored_value
    assert {name: getattr(stored, name) for name in untouched} == untouched
    assert broadcast.changed == [record.id]  # every instance forgets its cached copy

    cleared = await admin.update_key(updated, body(KeyUpdate, **{field: None}))
    assert getattr(cleared, column) is None
    assert getattr(await repo.key(record.id), column) is None
    assert broadcast.changed == [record.id, record.id]


async def test_patch_name_period_and_the_checks_of_create(
    admin: KeyAdmin, repo: KeysRepo, broadcast: Broadcast
) -> None:
    record = (await admin.create_key(body(KeyCreate, name="k", budget_usd="1"))).record
    renamed = await admin.update_key(record, body(KeyUpdate, name="renamed"))
    assert (renamed.name, renamed.budget_pico) == ("renamed", 1_000_000_000_000)
    monthly = await admin.update_key(renamed, body(KeyUpdate, budget_period="monthly"))
    assert monthly.budget_period == "monthly"
    # Clearing the amount but not the period would leave a budget that limits nothing.
    error = await refused(admin.update_key(monthly, body(KeyUpdate, budget_usd=None)))
    assert error.param == "budget_period"
    both = await admin.update_key(monthly, body(KeyUpdate, budget_usd=None, budget_period=None))
    assert (both.budget_pico, both.budget_period) == (None, None)
    for patch in ({"team_id": "team_nope"}, {"models": ["gpt-9"]}):
        await refused(admin.update_key(both, body(KeyUpdate, **patch)))
    assert (await repo.key(record.id)) == both  # a refused PATCH changes nothing
    assert len(broadcast.changed) == 3
    with pytest.raises(GatewayError):  # name may not be cleared
        body(KeyUpdate, name=None)


async def test_revoke_marks_once_and_broadcasts(
    admin: KeyAdmin, repo: KeysRepo, broadcast: Broadcast
) -> None:
    record = (await admin.create_key(body(KeyCreate, name="k"))).record
    revoked = await admin.revoke_key(record.id)
    assert revoked.revoked_at == NOW
    assert (await repo.key(record.id)) == revoked
    assert broadcast.changed == [record.id]
    later = KeyAdmin(repo, MODELS, broadcast, clock=lambda: NOW + timedelta(hours=1))
    again = await later.revoke_key(record.id)
    assert again.revoked_at == NOW  # the first revocation stands
    assert broadcast.changed == [record.id, record.id]


async def test_unknown_or_empty_key_is_a_404(admin: KeyAdmin, broadcast: Broadcast) -> None:
    for key_id in ("key_nope", ""):
        for call in (admin.key(key_id), admin.revoke_key(key_id)):
            error = await refused(call)
            assert (error.status, error.code) == (404, "key_not_found")
    assert broadcast.changed == []


async def test_teams_with_budgets_and_their_keys(admin: KeyAdmin, repo: KeysRepo) -> None:
    team = await admin.create_team(
        body(TeamCreate, name="ops", budget_usd="100", budget_period="monthly", tpm=9000)
    )
    assert (team.budget_pico, team.budget_period, team.tpm) == (100 * 10**12, "monthly", 9000)
    assert team.created_at == NOW
    assert await repo.team(team.id) == team
    error = await refused(admin.create_team(body(TeamCreate, name="t", budget_period="daily")))
    assert error.param == "budget_period"
    error = await refused(admin.create_team(body(TeamCreate, name="t", budget_usd="-1")))
    assert error.param == "budget_usd"
    assert [t.id for t in await admin.teams()] == [team.id]
    member = (await admin.create_key(body(KeyCreate, name="m", team_id=team.id))).record
    await admin.create_key(body(KeyCreate, name="loner"))
    assert [k.id for k in await admin.keys(team.id)] == [member.id]
    assert len(await admin.keys()) == 2
    assert isinstance(member, KeyRecord)
