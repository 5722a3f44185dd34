"""Who is calling: the master key for now; virtual keys plug in here."""

from __future__ import annotations

import hmac

from nemorouter.core.errors import invalid_api_key

MASTER_KEY_ID = "master"


class Caller:
    """The authenticated identity a request is attributed to (spend, limits, budgets)."""

    __slots__ = ("key_id", "team_id")

    def __init__(self, key_id: str, team_id: str | None = None) -> None:
        self.key_id = key_id
        self.team_id = team_id


class Authenticator:
    def __init__(self, master_key: str) -> None:
        self._master = master_key.encode()
        self._master_caller = Caller(MASTER_KEY_ID)

    def bearer(self, authorization: bytes | None) -> bytes:
        """The key from an `Authorization: Bearer <key>` header value."""
        if not authorization or authorization[:7].lower() != b"bearer ":
            raise invalid_api_key()
        return authorization[7:].strip()

    def check(self, authorization: bytes | None) -> Caller:
        """Accept the master key; anything else is a 401."""
        key = self.bearer(authorization)
        if not hmac.compare_digest(key, self._master):
            raise invalid_api_key()
        return self._master_caller

    def check_master(self, authorization: bytes | None) -> None:
        """Admin endpoints: the master key only."""
        self.check(authorization)
