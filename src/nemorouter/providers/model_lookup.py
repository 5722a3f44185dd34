"""The model lookup of `nemorouter check`: one GET of the model's resource at the provider,
with the credentials its adapter sends, so that the credentials and the model name are
checked without paying for a call.

Endpoints, per provider type:
- vertex, anthropic-vertex: GET {base}/v1/publishers/{publisher}/models/{model}, Vertex AI
  `publishers.models.get` (REST v1, resource name `publishers/{publisher}/models/{model}`, no
  project or location in it). googleapis/python-genai google/genai/_api_client.py sends the
  same GET without the projects/locations prefix ("Skip adding project and locations when
  getting Vertex AI base models"). A version suffix (`claude-sonnet-4-5@20250929`) is not
  part of that resource name and is left out [unverified: whether the versioned name also
  resolves].
- gemini: GET {base}/v1beta/models/{model}, Gemini API `models.get`
  (https://ai.google.dev/api/models#method:-models.get); answers a Model resource.
- anthropic: GET {base}/v1/models/{model}, anthropics/anthropic-sdk-python
  src/anthropic/resources/models.py `retrieve`; answers `{type: "model", id, ...}`.
- openai: GET {base_url}/models/{model}, openai/openai-python src/openai/resources/models.py
  `retrieve`.
- openai-compatible: GET {base_url}/models, the list, searched for the model: servers such as
  vLLM serve the list but not always the single-model route.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from nemorouter.config import ProviderConfig
from nemorouter.providers.base import ProviderAdapter
from nemorouter.providers.classify import classify_exception
from nemorouter.providers.google_errors import classify_google
from nemorouter.providers.http import HTTPPool
from nemorouter.types.upstream import FailureKind, UpstreamFailure

_PUBLISHERS = {"vertex": "google", "anthropic-vertex": "anthropic"}


@dataclass(frozen=True, slots=True)
class ModelFound:
    """A successful lookup: the answer's headers, its time, and the resource's name."""

    headers: Mapping[str, str]
    seconds: float
    name: str


class _GetPool(HTTPPool):
    """The HTTP pool sending a bodiless GET (its `post` is the one request it makes)."""

    def head(self, path: str, extra: bytes, length: int) -> bytes:
        return b"GET %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity\r\n%s\r\n" % (
            (self.base_path + path).encode(),
            self.host_header.encode(),
            extra,
        )


def lookup_path(provider_type: str, provider_model: str) -> str:
    """The model resource's path on the adapter's base URL (see the module docstring)."""
    publisher = _PUBLISHERS.get(provider_type)
    if publisher is not None:
        name = provider_model.split("@", 1)[0]
        return f"/v1/publishers/{publisher}/models/{quote(name, safe='')}"
    if provider_type == "gemini":
        return f"/v1beta/models/{quote(provider_model, safe='')}"
    if provider_type == "anthropic":
        return f"/v1/models/{quote(provider_model, safe='')}"
    if provider_type == "openai":
        return f"/models/{quote(provider_model, safe='')}"
    return "/models"  # openai-compatible: the list


async def credentials_header(adapter: ProviderAdapter, provider: ProviderConfig) -> bytes:
    """The auth header lines the adapter sends; for Vertex this fetches (or reuses) the
    OAuth token, so a refused service account fails here."""
    auth = getattr(adapter, "auth", None)  # the Gemini and Claude adapters' credentials
    if auth is not None:
        header, _ = await auth.header()
        return bytes(header)
    if provider.api_key and provider.api_key.lower() != "none":  # as OpenAIAdapter sends it
        return f"Authorization: Bearer {provider.api_key}\r\n".encode()
    return b""


async def lookup_model(
    base_url: str,
    provider: ProviderConfig,
    provider_model: str,
    header: bytes,
    timeout_s: float,
) -> ModelFound:
    """GET the model's resource; an `UpstreamFailure` (classified as for a call) otherwise."""
    pool = _GetPool(base_url, max_connections=1, connect_timeout=timeout_s)
    started = time.perf_counter()
    try:
        response = await pool.post(
            lookup_path(provider.type, provider_model), b"", header, timeout_s
        )
    except OSError as exc:
        raise classify_exception(exc) from None
    finally:
        await pool.close()
    seconds = time.perf_counter() - started
    if response.status != 200:
        raise classify_google(response.status, response.headers, response.body)
    try:
        data: Any = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamFailure(FailureKind.MALFORMED, "the model lookup answered no JSON object")
    if provider.type == "openai-compatible":
        listed = data.get("data")
        ids = (
            {m.get("id") for m in listed if isinstance(m, dict)}
            if isinstance(listed, list)
            else set()
        )
        if provider_model not in ids:
            raise UpstreamFailure(
                FailureKind.SERVER_ERROR,
                f"{provider_model!r} is not among the {len(ids)} models the provider lists",
                status=404,
            )
        return ModelFound(response.headers, seconds, provider_model)
    name = data.get("name") or data.get("id")
    return ModelFound(response.headers, seconds, str(name) if name else provider_model)
