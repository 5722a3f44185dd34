"""Adapter for OpenAI and any OpenAI-compatible endpoint (vLLM, Vertex MaaS, ...).

The canonical request already is this wire format, so the adapter only swaps in the
provider's model name, and classifies every failure for the router.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from nemorouter.config import DeploymentConfig, ProviderConfig, Settings
from nemorouter.providers.base import FailureKind, UpstreamFailure
from nemorouter.providers.classify import classify_exception, classify_status

OPENAI_BASE_URL = "https://api.openai.com/v1"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict).decode


class OpenAIAdapter:
    """One OpenAI-format endpoint on one pooled aiohttp session."""

    def __init__(self, name: str, provider: ProviderConfig, settings: Settings) -> None:
        self.name = name
        base = (provider.base_url or OPENAI_BASE_URL).rstrip("/")
        self.url = f"{base}/chat/completions"
        self._headers = {"Content-Type": "application/json"}
        if provider.api_key and provider.api_key.lower() != "none":
            self._headers["Authorization"] = f"Bearer {provider.api_key}"
        self._max_connections = provider.max_connections
        # A whole non-streaming answer must arrive within the request timeout; a stream
        # may run longer, but no gap between chunks may exceed it.
        self._timeout = aiohttp.ClientTimeout(
            total=settings.request_timeout_s, sock_connect=settings.connect_timeout_s
        )
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=settings.connect_timeout_s,
            sock_read=settings.request_timeout_s,
        )
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, ttl_dns_cache=300, keepalive_timeout=30
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            skip_auto_headers=("User-Agent",),
            auto_decompress=True,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"provider {self.name} used before start()")
        return self._session

    def _payload(self, deployment: DeploymentConfig, body: dict[str, Any]) -> bytes:
        return _encode({**body, "model": deployment.upstream_model})

    async def complete(self, deployment: DeploymentConfig, body: dict[str, Any]) -> dict[str, Any]:
        data = self._payload(deployment, body)
        try:
            async with self.session.post(self.url, data=data, timeout=self._timeout) as response:
                raw = await response.read()
                if response.status != 200:
                    raise classify_status(response.status, response.headers, raw)
        except UpstreamFailure:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise classify_exception(exc) from None
        try:
            return _decode(raw)
        except msgspec.DecodeError:
            raise UpstreamFailure(
                FailureKind.SERVER_ERROR, "provider answered 200 with a body that is not JSON"
            ) from None

    async def open_stream(self, deployment: DeploymentConfig, body: dict[str, Any]) -> _SSEStream:
        data = self._payload(deployment, body)
        try:
            response = await self.session.post(self.url, data=data, timeout=self._stream_timeout)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise classify_exception(exc) from None
        if response.status != 200:
            try:
                raw = await response.read()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise classify_exception(exc) from None
            finally:
                response.release()
            raise classify_status(response.status, response.headers, raw)
        return _SSEStream(response)


class _SSEStream:
    """Chunks of an OpenAI server-sent-event stream, decoded."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[dict[str, Any]]:
        content = self._response.content
        finished = False
        try:
            async for line in content:
                if not line.startswith(b"data:"):
                    continue  # comments, event names, blank separators
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    finished = True
                    await content.read()  # the chunked terminator: keeps the connection reusable
                    break
                chunk = _decode(payload)
                if "error" in chunk:
                    raise UpstreamFailure(
                        FailureKind.SERVER_ERROR,
                        f"provider reported an error mid-stream: {chunk['error']}",
                    )
                yield chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise classify_exception(exc) from None
        except msgspec.DecodeError:
            raise UpstreamFailure(
                FailureKind.SERVER_ERROR, "provider sent a stream event that is not JSON"
            ) from None
        finally:
            self._response.release()
        if not finished:
            raise UpstreamFailure(
                FailureKind.CONNECTION, "provider closed the stream before it finished"
            )

    async def aclose(self) -> None:
        self._response.close()
