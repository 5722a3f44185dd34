"""GET of one model's resource on the simulated providers, shaped like the real APIs:

- OpenAI: GET /v1/models/{model} → `{id, object: "model", created, owned_by}`
  (openai/openai-python src/openai/types/model.py); unknown: 404 `model_not_found`.
- Gemini API: GET /v1beta/models/{model} → a Model resource `{name: "models/…", version,
  displayName, description, inputTokenLimit, outputTokenLimit, supportedGenerationMethods,
  temperature, topP, topK, …}` (https://ai.google.dev/api/models#Model), key in
  `x-goog-api-key`; unknown: 404 NOT_FOUND.
- Vertex AI: GET /v1/publishers/{google|anthropic}/models/{model} → a PublisherModel
  `{name: "publishers/…/models/…", versionId, openSourceCategory, launchStage}` (Vertex REST
  v1 `publishers.models.get`), bearer token checked like the generate calls.
- Anthropic: GET /v1/models/{model_id} → `{type: "model", id, display_name, created_at,
  lifecycle}`
  (anthropics/anthropic-sdk-python src/anthropic/types/model_info.py), `x-api-key` checked.

A simulator knows every model unless its `known_models` is set. Error renderers come from the
simulator modules, imported when a lookup is answered (they import this package's base).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from nemorouter.testing import sim_http as http

if TYPE_CHECKING:
    from nemorouter.testing.simulated_provider import SimulatedProvider

_OPENAI = re.compile(rb"^(?:/v1)?/models/([^/]+)$")
_GEMINI_API = re.compile(rb"^/v1(?:beta)?/models/([^/:]+)$")
_VERTEX = re.compile(rb"^/v1(?:beta1)?/publishers/(google|anthropic)/models/([^/:]+)$")
_ANTHROPIC = re.compile(rb"^/v1/models/([^/]+)$")
# What the simulated Gemini models report (the catalog's Gemini 2.5 figures).
GEMINI_INPUT_LIMIT = 1_048_576
GEMINI_OUTPUT_LIMIT = 65_536


def lookup(
    sim: SimulatedProvider, path: bytes, headers: http.Headers, auth: bytes | None
) -> bytes | None:
    """The answer to a GET of a model resource in the simulator's format; None when `path`
    is no such resource."""
    kind = sim.model_format
    if kind == "openai":
        return _openai(sim, path, auth)
    if kind == "google":
        return _google(sim, path, headers, auth)
    if kind == "anthropic":
        return _anthropic(sim, path, headers, auth)
    return None


def _name(found: re.Match[bytes], group: int = 1) -> str:
    return found[group].decode("latin-1")


def _openai(sim: SimulatedProvider, path: bytes, auth: bytes | None) -> bytes | None:
    found = _OPENAI.match(path)
    if found is None:
        return None
    if sim.api_key is not None and auth != b"Bearer " + sim.api_key.encode():
        return http.UNAUTHORIZED
    model = _name(found)
    if not sim.knows(model):
        message = f"The model `{model}` does not exist or you do not have access to it."
        body = http.error_body(message, "invalid_request_error", None, "model_not_found")
        return http.json_response(404, body)
    resource = {"id": model, "object": "model", "created": 0, "owned_by": "nemorouter-sim"}
    return http.json_response(200, resource)


def _vertex_model(
    sim: SimulatedProvider, path: bytes, auth: bytes | None, publisher: str
) -> bytes | None:
    """Vertex AI's GET of one publisher model (`publishers/{publisher}/models/{model}`)."""
    from nemorouter.testing.sim_gemini import google_error, unauthenticated

    vertex = _VERTEX.match(path)
    if vertex is None or vertex[1] != publisher.encode():
        return None
    if sim.bearer_refused(auth):
        return unauthenticated()
    model = _name(vertex, 2)
    if not sim.knows(model):
        return google_error(
            404, f"Publisher Model `publishers/{publisher}/models/{model}` not found."
        )
    return http.json_response(200, _publisher_model(publisher, model))


def _google(
    sim: SimulatedProvider, path: bytes, headers: http.Headers, auth: bytes | None
) -> bytes | None:
    from nemorouter.testing.sim_gemini import google_error

    vertex = _vertex_model(sim, path, auth, "google")
    if vertex is not None:
        return vertex
    found = _GEMINI_API.match(path)
    if found is None:
        return None
    key = next((v for n, v in headers if n.lower() == b"x-goog-api-key"), b"")
    if sim.api_key is not None and key != sim.api_key.encode():
        return google_error(400, "API key not valid. Please pass a valid API key.", _BAD_KEY)
    model = _name(found)
    if not sim.knows(model):
        return google_error(
            404,
            f"models/{model} is not found for API version v1beta, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods.",
        )
    resource = {
        "name": f"models/{model}",
        "version": "001",
        "displayName": model,
        "description": "A simulated Gemini model.",
        "inputTokenLimit": GEMINI_INPUT_LIMIT,
        "outputTokenLimit": GEMINI_OUTPUT_LIMIT,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
        "temperature": 1.0,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2.0,
        "thinking": True,
    }
    return http.json_response(200, resource)


_BAD_KEY = [
    {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
    }
]


def _anthropic(
    sim: SimulatedProvider, path: bytes, headers: http.Headers, auth: bytes | None
) -> bytes | None:
    from nemorouter.testing.sim_anthropic import anthropic_error

    vertex = _vertex_model(sim, path, auth, "anthropic")
    if vertex is not None:
        return vertex
    found = _ANTHROPIC.match(path)
    if found is None:
        return None
    key = next((v for n, v in headers if n.lower() == b"x-api-key"), None)
    # The SDK sends its key as `Authorization: Bearer` since 2.x (anthropic-sdk-python
    # src/anthropic/_client.py `_api_key_auth`); the gateway sends `x-api-key`.
    bearer = auth[7:] if auth and auth.startswith(b"Bearer ") else None
    if sim.api_key is not None and sim.api_key.encode() not in (key, bearer):
        return anthropic_error(401, "invalid x-api-key")
    model = _name(found)
    if not sim.knows(model):
        return anthropic_error(404, f"model: {model}")
    resource = {
        "type": "model",
        "id": model,
        "display_name": model,
        "created_at": "2025-09-29T00:00:00Z",
        "lifecycle": "active",
    }
    return http.json_response(200, resource)


def _publisher_model(publisher: str, model: str) -> dict[str, str]:
    return {
        "name": f"publishers/{publisher}/models/{model}",
        "versionId": "001",
        "openSourceCategory": "PROPRIETARY",
        "launchStage": "GA",
    }
