"""A fake Google OAuth token endpoint, and service-account keys for it.

The Vertex credential flow runs for real against it: the gateway signs a JWT assertion with a
generated RSA key (as google-auth does), posts it here, and gets a bearer token that the
simulated Vertex providers (`SimulatedGemini`, `SimulatedAnthropic`) accept until it expires or
is revoked. Faults, latency and recording work as on the other simulated providers.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from nemorouter.testing import sim_http as http
from nemorouter.testing.sim_types import Fault
from nemorouter.testing.simulated_provider import SimulatedProvider

JWT_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_ENDPOINT = "https://oauth2.googleapis.com/token"


@dataclass(frozen=True)
class SimServiceAccount:
    """A service-account key (`info`, as in the JSON key file) and its public half."""

    info: dict[str, Any]
    public_pem: bytes

    @property
    def email(self) -> str:
        return str(self.info["client_email"])

    @classmethod
    def create(cls, token_uri: str, project: str = "sim-project") -> SimServiceAccount:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        info = {
            "type": "service_account",
            "project_id": project,
            "private_key_id": os.urandom(20).hex(),
            "private_key": private_pem,
            "client_email": f"gateway@{project}.iam.gserviceaccount.com",
            "client_id": str(int.from_bytes(os.urandom(8), "big")),
            "token_uri": token_uri,
        }
        return cls(info, public_pem)

    def write(self, path: Path) -> Path:
        path.write_bytes(msgspec.json.encode(self.info))
        return path


def _oauth_error(status: int, error: str, description: str) -> bytes:
    return http.json_response(status, {"error": error, "error_description": description})


class FakeOAuthServer(SimulatedProvider):
    """`POST /token` with a JWT-bearer grant → `{"access_token", "expires_in", ...}`."""

    def __init__(self, expires_in: int = 3600, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expires_in = expires_in
        self._accounts: dict[str, bytes] = {}
        self._issued: dict[str, float] = {}  # token -> expiry (time.monotonic)
        self._lock = threading.Lock()  # tokens are checked from the providers' threads
        self._serial = itertools.count(1)

    @property
    def token_uri(self) -> str:
        return f"{self.origin}/token"

    def create_account(self, project: str = "sim-project") -> SimServiceAccount:
        """A new service account this endpoint knows (its key signs valid assertions)."""
        account = SimServiceAccount.create(self.token_uri, project)
        self._accounts[account.email] = account.public_pem
        return account

    @property
    def tokens_issued(self) -> int:
        return len(self._issued)

    def valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._issued.get(token)
        return expiry is not None and time.monotonic() < expiry

    def revoke_all(self) -> None:
        """Every token issued so far stops working (the next call sees a 401)."""
        with self._lock:
            self._issued = dict.fromkeys(self._issued, 0.0)

    def clear(self) -> None:
        super().clear()
        with self._lock:
            self._issued.clear()

    model_format = None  # no model resources either
    serves_health = False  # only /token is served: /health is a 404 like any other path

    def _chat_target(self, method: bytes, url: bytes, path: bytes) -> bytes | None:
        # only a POST is a token request; any other method gets the 404 of `_other`
        return path if path == b"/token" and method == b"POST" else None

    def _other(self, method: bytes, path: bytes) -> bytes:
        return _oauth_error(404, "not_found", f"no such endpoint {path.decode('latin-1')}")

    def _render_fault(self, fault: Fault) -> bytes:
        return _oauth_error(fault.code, "server_error", f"Simulated fault: HTTP {fault.code}")

    def _answer(
        self, path: bytes, headers: http.Headers, body: bytes, auth: bytes | None, cut: int | None
    ) -> bytes:
        form = parse_qs(body.decode("latin-1"))
        if form.get("grant_type") != [JWT_GRANT_TYPE] or len(form.get("assertion", ())) != 1:
            return _oauth_error(400, "unsupported_grant_type", "expected a JWT-bearer grant")
        assertion = form["assertion"][0]
        try:
            claims = jwt.decode(assertion, verify=False)
            public_pem = self._accounts.get(claims.get("iss", ""))
            if public_pem is None:
                return _oauth_error(400, "invalid_grant", "Invalid grant: account not found")
            # google-auth signs for Google's endpoint whatever the key file's token_uri
            # (google/oauth2/service_account.py: "aud": _GOOGLE_OAUTH2_TOKEN_ENDPOINT)
            audience = [self.token_uri, GOOGLE_TOKEN_ENDPOINT]
            claims = jwt.decode(assertion, certs=public_pem, audience=audience)
        except (auth_exceptions.GoogleAuthError, ValueError) as exc:
            return _oauth_error(400, "invalid_grant", f"Invalid JWT Signature or claims: {exc}")
        if CLOUD_PLATFORM_SCOPE not in str(claims.get("scope", "")).split():
            return _oauth_error(400, "invalid_scope", "the cloud-platform scope is required")
        token = f"ya29.sim-{next(self._serial)}-{os.urandom(8).hex()}"
        with self._lock:
            self._issued[token] = time.monotonic() + self.expires_in
        return http.json_response(
            200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )
