"""Google credentials as the official SDKs find them: Application Default Credentials, or any
credential file google-auth reads.

Without `credentials` a provider uses `google.auth.default(scopes=[cloud-platform])`, as
googleapis/python-genai (google/genai/_api_client.py, `load_auth`) and
anthropics/anthropic-sdk-python (src/anthropic/lib/_extras/_google_auth.py,
`load_default_credentials`) do: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
application-default login, then the metadata server (GCE, GKE, Cloud Run). `credentials` may
name (or hold) any file google-auth understands: a service-account key (refreshed on the
event loop by `ServiceAccountTokens`), `authorized_user`, `external_account` (workload
identity federation), `external_account_authorized_user`, `impersonated_service_account`.

google-auth refreshes with blocking HTTP (its requests transport), so a refresh runs in a
worker thread (as anthropic-sdk-python's async client does) and never blocks the event loop;
`TokenCache` shares it between concurrent callers. Discovery (the metadata-server probe, the
project lookup) happens once, when the gateway builds its providers.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nemorouter.config import ConfigError
from nemorouter.providers.google_auth import (
    ASSERTION_LIFETIME_S,
    CLOUD_PLATFORM_SCOPE,
    TOKEN_TIMEOUT_S,
    ServiceAccountTokens,
    TokenCache,
    auth_failure,
    load_credentials_info,
    redact,
)

ADC_HINT = (
    "set `credentials` to a credential file, or provide Application Default Credentials "
    "(GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, or the "
    "metadata server on Google Cloud)"
)
# What a credential is, for error messages (module of its google-auth class).
_KINDS = {
    "google.auth.compute_engine.credentials": "the metadata server's service account",
    "google.oauth2.credentials": "user credentials (authorized_user)",
    "google.oauth2.service_account": "a service-account key",
    "google.auth.identity_pool": "workload identity federation (external_account)",
    "google.auth.aws": "workload identity federation (external_account, AWS)",
    "google.auth.pluggable": "workload identity federation (external_account, executable)",
    "google.auth.external_account_authorized_user": "workforce identity federation",
    "google.auth.impersonated_credentials": "service-account impersonation",
}


def google_tokens(credentials: str | None, where: str) -> tuple[TokenCache, str | None]:
    """Tokens for a provider's `credentials` (None: Application Default Credentials), and
    the project they name, if any. Problems are `ConfigError`s located at `where`."""
    if credentials is None:
        return application_default(where)
    info = load_credentials_info(credentials, where)
    if info["type"] == "service_account":
        return ServiceAccountTokens(info, where=where), info.get("project_id")
    loaded, project = _from_info(info, where)
    return GoogleAuthTokens(loaded), project


def application_default(where: str) -> tuple[TokenCache, str | None]:
    """`google.auth.default()` with the cloud-platform scope (blocking: call at start)."""
    import google.auth
    from google.auth import exceptions

    try:
        loaded, project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except exceptions.DefaultCredentialsError as exc:
        raise ConfigError(
            where, f"no Application Default Credentials found ({redact(str(exc))}); {ADC_HINT}"
        ) from None
    except (exceptions.GoogleAuthError, ValueError, OSError) as exc:
        raise ConfigError(
            where, f"Application Default Credentials could not be loaded: {_reason(exc)}"
        ) from None
    return GoogleAuthTokens(loaded), project or None


def _from_info(info: dict[str, Any], where: str) -> tuple[Any, str | None]:
    """google-auth credentials from a parsed file (no network: loaded without scopes, so
    google-auth does not look the project up, then scoped)."""
    import google.auth
    from google.auth import credentials as auth_credentials
    from google.auth import exceptions

    with warnings.catch_warnings():
        # google-auth warns against files from outside sources; this one is the operator's.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loaded, project = google.auth.load_credentials_from_dict(info)
        except (exceptions.GoogleAuthError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                where, f"unusable {info['type']} credentials: {_reason(exc)}"
            ) from None
    scoped = auth_credentials.with_scopes_if_required(loaded, [CLOUD_PLATFORM_SCOPE])
    return scoped, project or None


def _reason(exc: BaseException) -> str:
    """The error's class and first argument (google-auth puts the response body second)."""
    detail: object = exc.args[0] if exc.args else ""
    while isinstance(detail, BaseException) and detail.args:  # google-auth wraps its errors
        detail = detail.args[0]
    detail = str(detail)
    return redact(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)


def describe(credentials: Any) -> str:
    """What kind of credential this is, for messages (never a secret)."""
    kind = _KINDS.get(type(credentials).__module__, type(credentials).__name__)
    email = getattr(credentials, "service_account_email", None)
    if isinstance(email, str) and "@" in email:
        return f"{kind} {email}"
    return kind


def _capped_request(cap_s: float) -> Any:
    """google-auth's requests transport with every call's timeout at most `cap_s` (its own
    default is 120 s)."""
    from google.auth.transport import requests as auth_requests

    class CappedRequest(auth_requests.Request):  # type: ignore[misc]
        def __call__(self, url: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
            timeout = kwargs.get("timeout")
            kwargs["timeout"] = cap_s if timeout is None else min(timeout, cap_s)
            return super().__call__(url, method, *args, **kwargs)

    return CappedRequest()


class GoogleAuthTokens(TokenCache):
    """Access tokens from google-auth credentials, each refresh in a worker thread."""

    def __init__(
        self,
        credentials: Any,
        *,
        clock: Callable[[], float] = time.time,
        timeout_s: float = TOKEN_TIMEOUT_S,
    ) -> None:
        super().__init__(clock)
        self.credentials = credentials
        self.description = describe(credentials)
        self._request = _capped_request(timeout_s)

    async def close(self) -> None:
        self._request.session.close()

    async def _fetch(self) -> tuple[str, float]:
        try:
            await asyncio.to_thread(self.credentials.refresh, self._request)
        except Exception as exc:  # google-auth's errors, and ValueError/KeyError on odd answers
            raise auth_failure(f"{self.description}: {_reason(exc)}") from None
        token = self.credentials.token
        if not isinstance(token, str) or not token:
            raise auth_failure(f"{self.description}: the refresh gave no access token")
        expiry = self.credentials.expiry  # naive UTC, as google-auth keeps it
        if expiry is None:
            return token, float(ASSERTION_LIFETIME_S)
        now = datetime.now(UTC).replace(tzinfo=None)
        return token, (expiry - now).total_seconds()
