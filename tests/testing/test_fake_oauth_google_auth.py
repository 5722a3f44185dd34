"""google-auth's own service-account flow gets tokens from the fake OAuth endpoint: google-auth
signs its JWT assertion for Google's token endpoint whatever the key file's token_uri
(google/oauth2/service_account.py: "aud": _GOOGLE_OAUTH2_TOKEN_ENDPOINT), so the fake accepts that
audience as well as its own URL. The SDK tests (tests/conformance) mint their tokens this way."""

from __future__ import annotations

import google.auth.transport.requests
from google.oauth2 import service_account

from nemorouter.testing import FakeOAuthServer
from nemorouter.testing.fake_oauth import CLOUD_PLATFORM_SCOPE


def test_google_auth_service_account_gets_a_valid_token() -> None:
    with FakeOAuthServer() as oauth:
        credentials = service_account.Credentials.from_service_account_info(
            oauth.create_account().info, scopes=[CLOUD_PLATFORM_SCOPE]
        )
        credentials.refresh(google.auth.transport.requests.Request())
        assert isinstance(credentials.token, str) and oauth.valid(credentials.token)
