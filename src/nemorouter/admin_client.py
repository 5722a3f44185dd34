"""A small synchronous client of the admin API, for the `spend` and `keys` commands."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_BASE_URL = "http://127.0.0.1:4000/v1"


class AdminError(Exception):
    """The gateway refused (its OpenAI-shaped error message) or could not be reached."""


class AdminClient:
    def __init__(self, base_url: str, api_key: str, timeout_s: float = 30.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise AdminError(f"the base URL must be an http(s) URL, got {base_url!r}")
        # The admin API sits beside /v1: accept either form of the URL.
        self.root = base_url.rstrip("/").removesuffix("/v1")
        self.api_key = api_key
        self.timeout_s = timeout_s

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = f"{self.root}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.api_key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise AdminError(_error_message(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminError(f"cannot reach the gateway at {self.root}: {reason}") from None
        return json.loads(payload) if payload else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params)


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(exc.read())["error"]
        return f"{exc.code} {error.get('code')}: {error.get('message')}"
    except (ValueError, KeyError, TypeError):
        return f"{exc.code} {exc.reason}"
