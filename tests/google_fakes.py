"""Local stand-ins for Google's credential endpoints, on one loopback port, for google-auth
(2.63) to talk to as it would on Google Cloud:

- the metadata server (`google/auth/compute_engine/_metadata.py`): the ping at the root of
  `GCE_METADATA_IP`, and under `GCE_METADATA_HOST` `/computeMetadata/v1/project/project-id`,
  `instance/service-accounts/default/?recursive=true` and `.../default/token`; every request
  must carry `Metadata-Flavor: Google` and every answer does;
- an OAuth token endpoint for refresh-token grants (`authorized_user`, `POST /token`);
- a Security Token Service (`external_account`, `POST /sts`, RFC 8693 token exchange);
- IAM Credentials' `generateAccessToken` (impersonation, `POST /v1/projects/-/serviceAccounts/
  EMAIL:generateAccessToken`, with a source token this server issued).

Each access token it issues is remembered (by kind), so a simulated provider given this
server as its `oauth` accepts exactly them (`valid`), until `revoke_all`.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

GCE_EMAIL = "gce-runtime@meta-project.iam.gserviceaccount.com"
TARGET_EMAIL = "vertex-caller@target-project.iam.gserviceaccount.com"
REFRESH_TOKEN = "1//refresh-" + "r" * 40
CLIENT_ID = "client-1234.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-" + "s" * 28
SUBJECT_TOKEN = "subject-jwt-" + "j" * 40
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


class FakeGoogle:
    """The endpoints above; `counts[kind]` how many tokens of each kind were asked for."""

    def __init__(self, project: str = "meta-project") -> None:
        self.project = project
        self.expires_in = 3600
        self.latency_s = 0.0  # before each token answer (the handler runs in its own thread)
        self.counts: Counter[str] = Counter()
        self.headers_seen: list[dict[str, str]] = []
        self._faults: list[tuple[int, str]] = []  # (status, body) for the next token requests
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return f"http://{self.host}"

    def start(self) -> FakeGoogle:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, status: int, body: str = '{"error": "internal"}', times: int = 1) -> None:
        """The next `times` token requests (of any kind) fail with `status` and `body`."""
        with self._lock:
            self._faults.extend([(status, body)] * times)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.headers_seen.clear()
            self._faults.clear()
            self._issued.clear()
        self.expires_in = 3600
        self.latency_s = 0.0

    def valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._issued.get(token)
        return expiry is not None and time.monotonic() < expiry

    def issued(self) -> list[str]:
        with self._lock:
            return list(self._issued)

    def revoke_all(self) -> None:
        with self._lock:
            self._issued = dict.fromkeys(self._issued, 0.0)

    # --- used by the handler --------------------------------------------------------------

    def issue(self, kind: str) -> tuple[str, int] | tuple[int, str]:
        """A new token of `kind` and its lifetime, or an injected (status, body)."""
        if self.latency_s:
            time.sleep(self.latency_s)
        with self._lock:
            self.counts[kind] += 1
            if self._faults:
                return self._faults.pop(0)
            token = f"ya29.{kind}-{secrets.token_urlsafe(24)}"
            self._issued[token] = time.monotonic() + self.expires_in
            return token, self.expires_in


def _handler(fake: FakeGoogle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: str, kind: str = "application/json") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Metadata-Flavor", "Google")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _token(self, kind: str, shape: str = "oauth") -> None:
            got = fake.issue(kind)
            if isinstance(got[0], int):
                self._send(got[0], str(got[1]))
                return
            token, lifetime = got
            if shape == "iam":
                expire = datetime.now(UTC) + timedelta(seconds=int(lifetime))
                body = {"accessToken": token, "expireTime": expire.strftime("%Y-%m-%dT%H:%M:%SZ")}
            else:
                body = {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
                if shape == "sts":
                    body["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token"
            self._send(200, json.dumps(body))

        def do_GET(self) -> None:
            fake.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
            if self.headers.get("Metadata-Flavor") != "Google":
                self._send(403, "Missing Metadata-Flavor: Google header", "text/html")
                return
            path = urlsplit(self.path).path
            base = "/computeMetadata/v1/"
            # after its first refresh google-auth names the account by its e-mail
            path = path.replace(f"service-accounts/{GCE_EMAIL}/", "service-accounts/default/")
            if path == "/":  # the ping google-auth sends to GCE_METADATA_IP
                self._send(200, "", "application/text")
            elif path == base + "project/project-id":
                self._send(200, fake.project, "application/text")
            elif path == base + "instance/service-accounts/default/":
                info = {"email": GCE_EMAIL, "scopes": [SCOPE], "aliases": ["default"]}
                self._send(200, json.dumps(info))
            elif path == base + "instance/service-accounts/default/token":
                self._token("metadata")
            else:
                self._send(404, "Not Found", "text/html")

        def do_POST(self) -> None:
            fake.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            path = urlsplit(self.path).path
            if path == "/token":
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                expected = {
                    "grant_type": "refresh_token",
                    "refresh_token": REFRESH_TOKEN,
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                }
                if any(form.get(k) != v for k, v in expected.items()):
                    self._send(400, '{"error": "invalid_grant", "error_description": "Bad"}')
                    return
                self._token("user")
            elif path == "/sts":
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                if form.get("grant_type") != TOKEN_EXCHANGE or (
                    form.get("subject_token") != SUBJECT_TOKEN
                ):
                    self._send(400, '{"error": "invalid_grant"}')
                    return
                self._token("sts", "sts")
            elif path.startswith("/v1/projects/-/serviceAccounts/") and path.endswith(
                ":generateAccessToken"
            ):
                source = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if not fake.valid(source) or SCOPE not in json.loads(raw).get("scope", []):
                    self._send(401, '{"error": {"code": 401, "status": "UNAUTHENTICATED"}}')
                    return
                self._token("iam", "iam")
            else:
                self._send(404, '{"error": "not found"}')

    return Handler


@contextmanager
def running_fake() -> Iterator[FakeGoogle]:
    fake = FakeGoogle().start()
    try:
        yield fake
    finally:
        fake.stop()


def use_metadata_server(monkeypatch: pytest.MonkeyPatch, fake: FakeGoogle, tmp: Path) -> None:
    """google.auth.default() finds nothing but `fake`'s metadata server: no credential file,
    an empty gcloud config, no project in the environment. google-auth reads
    GCE_METADATA_HOST once, when `_metadata` is imported, so it is set both in the
    environment and in the module; GCE_METADATA_IP (the ping) is read at each call."""
    from google.auth.compute_engine import _metadata

    isolate_adc(monkeypatch, tmp)
    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", False)
    monkeypatch.setenv("GCE_METADATA_HOST", fake.host)
    monkeypatch.setenv("GCE_METADATA_IP", fake.host)
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", fake.host)


def redirect_user_token_endpoint(monkeypatch: pytest.MonkeyPatch, fake: FakeGoogle) -> None:
    """google-auth sends refresh-token grants of `authorized_user` credentials to
    oauth2.googleapis.com whatever their file's token_uri says
    (`google/oauth2/credentials.py` `from_authorized_user_info`: "always overrides"): point
    that constant at `fake`."""
    from google.oauth2 import credentials

    monkeypatch.setattr(credentials, "_GOOGLE_OAUTH2_TOKEN_ENDPOINT", f"{fake.origin}/token")


def fake_gcloud(monkeypatch: pytest.MonkeyPatch, tmp: Path, project: str) -> None:
    """A `gcloud` first on PATH that answers `gcloud config get project` (google-auth asks it
    for the project of gcloud's application-default login) without the real one's seconds."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "gcloud"
    script.write_text(
        f'#!/bin/sh\nif [ "$1 $2 $3" = "config get project" ]; then echo {project}; fi\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def isolate_adc(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """No Application Default Credentials but what the test provides: no credential file,
    an empty gcloud config folder, no project from the environment, no metadata server
    (nothing is ever sent off the machine)."""
    from google.auth.compute_engine import _metadata

    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    gcloud = tmp / "gcloud-config"
    gcloud.mkdir(exist_ok=True)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(gcloud))
    # google-auth's own switch (NO_GCE_CHECK, read at import): no metadata server probe
    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)
