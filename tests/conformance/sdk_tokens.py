"""A bearer token from the fake OAuth endpoint, minted the way google-auth does it (a signed JWT
assertion for a service account), for SDK clients that take a static token."""

from __future__ import annotations

import google.auth.transport.requests
from google.oauth2 import service_account

from nemorouter.testing import FakeOAuthServer
from nemorouter.testing.fake_oauth import CLOUD_PLATFORM_SCOPE


def minted_token(oauth: FakeOAuthServer) -> str:
    info = oauth.create_account().info
    credentials = service_account.Credentials.from_service_account_info(
        info, scopes=[CLOUD_PLATFORM_SCOPE]
    )
    credentials.refresh(google.auth.transport.requests.Request())
    assert isinstance(credentials.token, str)
    return credentials.token
