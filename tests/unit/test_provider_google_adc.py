"""Google credentials through google-auth, against local stand-ins for Google's endpoints
(tests/google_fakes.py): Application Default Credentials of every kind (metadata server,
workload identity federation, gcloud's user login, impersonation, a service-account key),
one shared refresh off the event loop, refresh before expiry, a refresh after a 401, and
failures that are the deployment's (`auth`) and never show a secret."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nemorouter.config import ConfigError, ProviderConfig, parse_config
from nemorouter.providers.google_adc import GoogleAuthTokens, google_tokens
from nemorouter.providers.google_auth import REFRESH_MARGIN_S, ServiceAccountTokens, redact
from nemorouter.providers.upstream_auth import VertexAuth, vertex_endpoint, with_auth
from nemorouter.testing import FakeOAuthServer
from nemorouter.types.upstream import FailureKind, UpstreamFailure
from tests.google_fakes import (
    CLIENT_ID,
    CLIENT_SECRET,
    GCE_EMAIL,
    REFRESH_TOKEN,
    SUBJECT_TOKEN,
    TARGET_EMAIL,
    FakeGoogle,
    fake_gcloud,
    isolate_adc,
    redirect_user_token_endpoint,
    running_fake,
    use_metadata_server,
)

WHERE = "providers.v.credentials"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeGoogle]:
    with running_fake() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeGoogle) -> FakeGoogle:
    fake_server.reset()
    return fake_server


@pytest.fixture
def metadata(fake: FakeGoogle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeGoogle:
    use_metadata_server(monkeypatch, fake, tmp_path)
    return fake


@pytest.fixture
def no_adc(fake: FakeGoogle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_adc(monkeypatch, tmp_path)
    redirect_user_token_endpoint(monkeypatch, fake)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def user_info(fake: FakeGoogle) -> dict[str, Any]:
    """What `gcloud auth application-default login` writes, with a local token endpoint."""
    return {
        "type": "authorized_user",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "token_uri": f"{fake.origin}/token",
    }


def external_info(fake: FakeGoogle, tmp_path: Path, impersonate: bool = False) -> dict[str, Any]:
    """A workload identity federation file (`gcloud iam workload-identity-pools
    create-cred-config` shape) whose subject token is a local file."""
    subject = tmp_path / "subject-token.jwt"
    subject.write_text(SUBJECT_TOKEN)
    info: dict[str, Any] = {
        "type": "external_account",
        "audience": "//iam.googleapis.com/locations/global/workloadIdentityPools/p/providers/q",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": f"{fake.origin}/sts",
        "credential_source": {"file": str(subject)},
    }
    if impersonate:
        info["service_account_impersonation_url"] = (
            f"{fake.origin}/v1/projects/-/serviceAccounts/{TARGET_EMAIL}:generateAccessToken"
        )
    return info


def write(path: Path, info: dict[str, Any]) -> str:
    path.write_text(json.dumps(info))
    return str(path)


async def one_token(tokens: Any) -> str:
    try:
        return str(await tokens.token())
    finally:
        await tokens.close()


# --- every kind of credential -------------------------------------------------------------


async def test_adc_from_the_metadata_server(metadata: FakeGoogle) -> None:
    tokens, project = google_tokens(None, WHERE)
    assert isinstance(tokens, GoogleAuthTokens)
    assert project == "meta-project"  # from /computeMetadata/v1/project/project-id
    assert tokens.description == "the metadata server's service account"  # email: "default"
    token = await one_token(tokens)
    assert metadata.valid(token) and token.startswith("ya29.metadata-")
    assert metadata.counts == {"metadata": 1}
    assert all(h.get("metadata-flavor") == "Google" for h in metadata.headers_seen)


async def test_adc_from_gcloud_application_default_login(
    fake: FakeGoogle, no_adc: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gcloud_dir = Path(str(tmp_path / "gcloud-config"))
    write(gcloud_dir / "application_default_credentials.json", user_info(fake))
    fake_gcloud(monkeypatch, tmp_path, "gcloud-project")
    tokens, project = google_tokens(None, WHERE)
    assert project == "gcloud-project"  # `gcloud config get project`, as google-auth asks
    token = await one_token(tokens)
    assert fake.valid(token) and fake.counts == {"user": 1}


async def test_adc_from_a_workload_identity_federation_file(
    fake: FakeGoogle, no_adc: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "GOOGLE_APPLICATION_CREDENTIALS",
        write(tmp_path / "wif.json", external_info(fake, tmp_path)),
    )
    tokens, project = google_tokens(None, WHERE)
    assert project is None  # the audience names no project number to look up
    token = await one_token(tokens)
    assert fake.valid(token) and token.startswith("ya29.sts-")
    assert fake.counts == {"sts": 1}


async def test_credentials_naming_an_external_account_that_impersonates(
    fake: FakeGoogle, no_adc: None, tmp_path: Path
) -> None:
    path = write(tmp_path / "wif.json", external_info(fake, tmp_path, impersonate=True))
    tokens, project = google_tokens(path, WHERE)
    assert project is None
    token = await one_token(tokens)
    assert fake.valid(token) and token.startswith("ya29.iam-")  # the impersonated account's
    assert fake.counts == {"sts": 1, "iam": 1}


async def test_credentials_naming_an_impersonated_service_account_file(
    fake: FakeGoogle, no_adc: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from google.auth import iam

    # google-auth sends impersonation of this file type to iamcredentials.googleapis.com
    # whatever the file says: point that constant here
    monkeypatch.setattr(
        iam,
        "_IAM_ENDPOINT",
        f"{fake.origin}/v1/projects/-/serviceAccounts/{{}}:generateAccessToken",
    )
    info = {
        "type": "impersonated_service_account",
        "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/"
        f"-/serviceAccounts/{TARGET_EMAIL}:generateAccessToken",
        "source_credentials": user_info(fake),
        "delegates": [],
    }
    tokens, project = google_tokens(json.dumps(info), WHERE)  # inline JSON works too
    assert isinstance(tokens, GoogleAuthTokens) and project is None
    assert tokens.description == f"service-account impersonation {TARGET_EMAIL}"
    token = await one_token(tokens)
    assert fake.valid(token) and token.startswith("ya29.iam-")
    assert fake.counts == {"user": 1, "iam": 1}


async def test_adc_from_a_service_account_key_file(
    no_adc: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from google.oauth2 import service_account

    with FakeOAuthServer() as oauth:
        # google-auth signs its assertion for oauth2.googleapis.com (the audience Google
        # expects) while posting it to the key's token_uri; the fake checks its own address
        monkeypatch.setattr(service_account, "_GOOGLE_OAUTH2_TOKEN_ENDPOINT", oauth.token_uri)
        account = oauth.create_account(project="key-project")
        path = str(account.write(tmp_path / "key.json"))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", path)
        tokens, project = google_tokens(None, WHERE)  # google-auth's refresh, in a thread
        assert isinstance(tokens, GoogleAuthTokens) and project == "key-project"
        assert oauth.valid(await one_token(tokens))
        fast, project = google_tokens(path, WHERE)  # named: the on-loop fast path
        assert isinstance(fast, ServiceAccountTokens) and project == "key-project"
        assert oauth.valid(await one_token(fast))


# --- sharing, expiry, 401, the event loop ---------------------------------------------------


async def test_concurrent_callers_share_one_fetch(metadata: FakeGoogle) -> None:
    metadata.latency_s = 0.2  # the fetch is in flight while the others ask
    tokens, _ = google_tokens(None, WHERE)
    try:
        got = await asyncio.gather(*(tokens.token() for _ in range(50)))
        assert len(set(got)) == 1 and metadata.counts == {"metadata": 1}
        assert await tokens.token() == got[0] and metadata.counts == {"metadata": 1}
    finally:
        await tokens.close()


async def test_token_is_refreshed_before_it_expires(metadata: FakeGoogle) -> None:
    tokens, _ = google_tokens(None, WHERE)
    clock = tokens.clock = Clock()
    try:
        first = await tokens.token()
        clock.now += 3600 - REFRESH_MARGIN_S - 5  # not yet within the margin
        assert await tokens.token() == first
        clock.now += 10  # within it: refreshed before use, not after a 401
        second = await tokens.token()
        assert second != first and metadata.valid(second)
        assert metadata.counts == {"metadata": 2}
        metadata.expires_in = 100  # a token with little life left is used for half of it
        clock.now += 3600
        third = await tokens.token()
        clock.now += 45
        assert await tokens.token() == third
        clock.now += 10
        assert await tokens.token() != third and metadata.counts == {"metadata": 4}
    finally:
        await tokens.close()


async def test_a_401_refreshes_once_and_retries(metadata: FakeGoogle) -> None:
    auth = VertexAuth("v", ProviderConfig(type="vertex", location="us-central1"))
    assert auth.project == "meta-project"
    sent: list[bytes] = []

    async def refused_once(header: bytes) -> str:
        sent.append(header)
        if len(sent) == 1:
            raise UpstreamFailure(FailureKind.SERVER_ERROR, "unauthenticated", status=401)
        return "answer"

    try:
        assert await with_auth(auth, refused_once) == "answer"
        assert len(sent) == 2 and sent[0] != sent[1]
        assert metadata.counts == {"metadata": 2}
        assert sent[1] == f"Authorization: Bearer {metadata.issued()[1]}\r\n".encode()

        async def always_refused(header: bytes) -> str:
            sent.append(header)
            raise UpstreamFailure(FailureKind.SERVER_ERROR, "unauthenticated", status=401)

        sent.clear()
        with pytest.raises(UpstreamFailure):
            await with_auth(auth, always_refused)
        assert len(sent) == 2 and metadata.counts == {"metadata": 3}  # one refresh, no loop
    finally:
        await auth.close()


async def test_a_slow_token_fetch_does_not_block_the_event_loop(metadata: FakeGoogle) -> None:
    metadata.latency_s = 0.5
    tokens, _ = google_tokens(None, WHERE)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    try:
        started = time.perf_counter()
        await tokens.token()
        took = time.perf_counter() - started
    finally:
        ticking.cancel()
        await tokens.close()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert took >= 0.5
    assert len(ticks) >= 20 and max(gaps) < 0.2, (len(ticks), max(gaps))


# --- failures --------------------------------------------------------------------------------


async def test_a_refused_refresh_is_an_auth_failure_without_secrets(
    fake: FakeGoogle, no_adc: None, tmp_path: Path
) -> None:
    leaked = "ya29.a0AfB_byLEAKEDsecretTOKENvalue1234567890abcdef"
    fake.inject(
        400,
        json.dumps(
            {
                "error": "invalid_grant",
                "error_description": f"refresh_token {REFRESH_TOKEN} with {CLIENT_SECRET} "
                f"and {leaked} revoked",
            }
        ),
    )
    tokens, _ = google_tokens(write(tmp_path / "user.json", user_info(fake)), WHERE)
    try:
        with pytest.raises(UpstreamFailure) as caught:
            await tokens.token()
        failure = caught.value
        assert failure.kind is FailureKind.AUTH and failure.retryable
        assert "user credentials" in failure.message and "invalid_grant" in failure.message
        for secret in (REFRESH_TOKEN, CLIENT_SECRET, leaked, "LEAKEDsecret"):
            assert secret not in failure.message and secret not in failure.describe()
        assert fake.valid(await tokens.token())  # the failure is not cached
    finally:
        await tokens.close()


async def test_an_unreachable_token_endpoint_is_an_auth_failure(
    fake: FakeGoogle, no_adc: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from google.oauth2 import credentials

    nobody = "http://127.0.0.1:9/token"  # nothing listens there
    monkeypatch.setattr(credentials, "_GOOGLE_OAUTH2_TOKEN_ENDPOINT", nobody)
    tokens, _ = google_tokens(write(tmp_path / "user.json", user_info(fake)), WHERE)
    try:
        with pytest.raises(UpstreamFailure) as caught:
            await tokens.token()
        assert caught.value.kind is FailureKind.AUTH
        assert "TransportError" in caught.value.message
    finally:
        await tokens.close()


async def test_the_metadata_server_refusing_is_an_auth_failure(metadata: FakeGoogle) -> None:
    tokens, _ = google_tokens(None, WHERE)
    metadata.inject(403, "Forbidden: the workload has no service account")
    try:
        with pytest.raises(UpstreamFailure) as caught:
            await tokens.token()
        assert caught.value.kind is FailureKind.AUTH
        assert caught.value.message.startswith("the metadata server's service account")
    finally:
        await tokens.close()


def test_no_application_default_credentials_is_a_config_error(no_adc: None) -> None:
    with pytest.raises(ConfigError) as caught:
        google_tokens(None, WHERE)
    assert caught.value.path == WHERE
    assert "no Application Default Credentials" in str(caught.value)
    assert "gcloud auth application-default login" in str(caught.value)


def test_unusable_credential_files_are_config_errors(tmp_path: Path, fake: FakeGoogle) -> None:
    broken = {"type": "external_account", "audience": "x"}  # no token_url, no source
    with pytest.raises(ConfigError, match="unusable external_account credentials") as caught:
        google_tokens(json.dumps(broken), WHERE)
    assert caught.value.path == WHERE
    with pytest.raises(ConfigError, match="not a Google credential file"):
        google_tokens('{"type": "gdch_service_account"}', WHERE)
    key = {"type": "service_account", "private_key": "not a key", "client_email": "a@b"}
    with pytest.raises(ConfigError, match="unusable service-account key") as caught:
        google_tokens(json.dumps(key), WHERE)
    assert caught.value.path == WHERE


def test_project_comes_from_config_else_credentials_else_an_error(
    fake: FakeGoogle, no_adc: None, tmp_path: Path
) -> None:
    wif = write(tmp_path / "wif.json", external_info(fake, tmp_path))
    provider = ProviderConfig(type="vertex", location="us-central1", credentials=wif)
    with pytest.raises(ConfigError) as caught:
        vertex_endpoint("v", provider, "google")
    assert caught.value.path == "providers.v.project"
    assert "the credentials name none" in str(caught.value)
    provider = ProviderConfig(type="vertex", location="us-central1", credentials=wif, project="p")
    _, prefix, _ = vertex_endpoint("v", provider, "google")
    assert prefix == "/v1/projects/p/locations/us-central1/publishers/google/models/"


def test_adc_project_names_the_vertex_urls(metadata: FakeGoogle) -> None:
    provider = ProviderConfig(type="anthropic-vertex", location="us-east5")
    base, prefix, _ = vertex_endpoint("c", provider, "anthropic")
    assert base == "https://us-east5-aiplatform.googleapis.com"
    assert prefix == "/v1/projects/meta-project/locations/us-east5/publishers/anthropic/models/"
    assert metadata.counts == {}  # discovery fetched no token


def test_adc_without_a_project_is_a_config_error_naming_project(
    fake: FakeGoogle, no_adc: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "GOOGLE_APPLICATION_CREDENTIALS",
        write(tmp_path / "wif.json", external_info(fake, tmp_path)),
    )
    with pytest.raises(ConfigError) as caught:
        vertex_endpoint("v", ProviderConfig(type="vertex", location="global"), "google")
    assert caught.value.path == "providers.v.project"
    assert "google.auth.default()" in str(caught.value)


# --- configuration -------------------------------------------------------------------------


def config_with(provider: dict[str, Any]) -> dict[str, Any]:
    return {
        "settings": {"master_key": "sk-test-master-key"},
        "providers": {"p": provider},
        "deployments": [{"id": "d", "model": "gemini-2.5-flash", "provider": "p"}],
    }


@pytest.mark.parametrize(
    ("provider", "path", "message"),
    [
        ({"type": "gemini", "api_key": "k", "auth": "google"}, "auth", "only for"),
        (
            {"type": "openai-compatible", "base_url": "http://x", "api_key": "k", "auth": "google"},
            "auth",
            "remove api_key",
        ),
        (
            {"type": "openai-compatible", "base_url": "http://x", "credentials": "/k.json"},
            "credentials",
            "set auth: google",
        ),
        ({"type": "anthropic", "api_key": "k", "credentials": "/k.json"}, "credentials", "api_key"),
        ({"type": "vertex", "location": "us", "auth": "api_key"}, "api_key", "required"),
        ({"type": "vertex", "project": "p"}, "location", "required"),
        ({"type": "vertex", "location": "us", "auth": "oauth"}, "auth", "invalid enum"),
    ],
)
def test_auth_settings_are_checked_at_start(
    provider: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(config_with(provider), env={})
    assert caught.value.path == f"providers.p.{path}"


def test_which_providers_use_google_tokens() -> None:
    def uses(**fields: Any) -> bool:
        return parse_config(config_with(fields), env={}).providers["p"].google_auth

    assert uses(type="vertex", location="us")  # Application Default Credentials
    assert uses(type="vertex", location="us", credentials="/k.json", api_key="k")
    assert not uses(type="vertex", location="us", api_key="k")  # express mode
    assert uses(type="openai-compatible", base_url="http://x", auth="google", api_key="none")
    assert not uses(type="openai-compatible", base_url="http://x", api_key="k")


def test_redact_keeps_words_and_addresses_and_elides_tokens() -> None:
    text = (
        f"refused {GCE_EMAIL} at https://oauth2.googleapis.com/token: ya29.{'A1b_' * 12} "
        f"{REFRESH_TOKEN} eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhQGIuY29tIiwic2NvcGUiOiJ4In0.sig"
    )
    cleaned = redact(text)
    assert GCE_EMAIL in cleaned and "https://oauth2.googleapis.com/token" in cleaned
    assert "A1b_A1b_" not in cleaned and "rrrrrrrr" not in cleaned and "eyJhbGci" not in cleaned
