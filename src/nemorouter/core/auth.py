"""Who is calling: the master key for now; virtual keys plug in here."""

from __future__ import annotations

import hmac

from nemorouter.core.errors import invalid_api_key


class Authenticator:
    def __init__(self, master_key: str) -> None:
        self._master = master_key.encode()

    def bearer(self, authorization: bytes | None) -> bytes:
        """The key from an `Authorization: Bearer <key>` header value."""
        if not authorization or authorization[:7].lower() != b"bearer ":
            raise invalid_api_key()
        return authorization[7:].strip()

    def check(self, authorization: bytes | None) -> None:
        """Accept the master key; anything else is a 401."""
        key = self.bearer(authorization)
        if not hmac.compare_digest(key, self._master):
            raise invalid_api_key()
