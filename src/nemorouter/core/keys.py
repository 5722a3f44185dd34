"""Virtual keys and teams: the records, their admin-API input, secrets and hashes.

A key's secret (`sk-nemo-…`, 256 random bits) is shown once, at creation; the store keeps
its SHA-256 (a fast hash is enough for a secret this long: nothing to brute-force) and a
short prefix to recognise it in lists.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

import msgspec

from nemorouter.types.errors import invalid_request
from nemorouter.types.money import to_pico

SECRET_PREFIX = "sk-nemo-"
SHOWN_PREFIX_CHARS = 12
BudgetPeriod = Literal["daily", "monthly"]
# Admin input is stored in the keys and teams tables (store/schema.py): strings fit their
# columns and hold no NUL (PostgreSQL text cannot), limits fit Integer, budgets BigInteger.
_NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=_NO_NUL)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=_NO_NUL)]
Limit = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
MAX_BUDGET_PICO = 2**63 - 1
MAX_BUDGET_USD = Decimal(MAX_BUDGET_PICO).scaleb(-12)  # 9223372.036854775807
TagName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._:-]*$", max_length=64)]


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def shown_prefix(secret: str) -> str:
    """The part of a secret kept in the clear, to recognise the key in lists and errors."""
    return secret[:SHOWN_PREFIX_CHARS]


def new_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(8)}"


def hash_secret(secret: bytes | str) -> str:
    raw = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(raw).hexdigest()


# --- admin-API input -------------------------------------------------------------------------

_Input = TypeVar("_Input")

Money = Decimal  # checked non-negative by `budget_pico` (msgspec bounds only plain numbers)


class TeamCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    budget_usd: Money | None = None
    budget_period: BudgetPeriod | None = None
    rpm: Limit | None = None
    tpm: Limit | None = None


class KeyCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    team_id: Id | None = None
    models: list[Name] | None = None
    default_tags: list[TagName] | None = None
    rpm: Limit | None = None
    tpm: Limit | None = None
    budget_usd: Money | None = None
    budget_period: BudgetPeriod | None = None
    expires_at: datetime | None = None


class KeyUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """PATCH: only the fields present change; null clears a limit."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    team_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    models: list[Name] | msgspec.UnsetType | None = msgspec.UNSET
    default_tags: list[TagName] | msgspec.UnsetType | None = msgspec.UNSET
    rpm: Limit | msgspec.UnsetType | None = msgspec.UNSET
    tpm: Limit | msgspec.UnsetType | None = msgspec.UNSET
    budget_usd: Money | msgspec.UnsetType | None = msgspec.UNSET
    budget_period: BudgetPeriod | msgspec.UnsetType | None = msgspec.UNSET
    expires_at: datetime | msgspec.UnsetType | None = msgspec.UNSET


def decode_input(raw: bytes, kind: type[_Input]) -> _Input:
    """An admin body as `kind`, or a 400 naming the field."""
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        where = _AT.search(str(exc))
        field = where["path"] if where else None
        raise invalid_request(f"Invalid body: {exc}.", field) from None
    except msgspec.DecodeError:
        raise invalid_request("The request body is not valid JSON.") from None


# msgspec's "... - at `$.rpm`" / "`$.models[0]`": the field an error is about.
_AT = re.compile(r"at `\$\.(?P<path>[A-Za-z_]+)")


def naive_utc(moment: datetime | None, field: str = "expires_at") -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # 9999-12-31T23:00-12:00 is past the last UTC datetime
        raise invalid_request(f"'{field}' is out of the supported range.", field) from None


def budget_pico(amount: Decimal | None) -> int | None:
    if amount is None:
        return None
    if not amount.is_finite() or not 0 <= amount <= MAX_BUDGET_USD:
        raise invalid_request(
            f"'budget_usd' must be an amount from 0 to {MAX_BUDGET_USD}.", "budget_usd"
        )
    return to_pico(amount)
