"""The Starlette application: routes, lifespan, OpenAI-shaped errors for everything."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from nemorouter.config import Config
from nemorouter.core.tags import parse_tags
from nemorouter.gateway.admin import admin_routes
from nemorouter.gateway.admin_dashboard import dashboard_admin_routes
from nemorouter.gateway.admin_keys import key_routes
from nemorouter.gateway.asgi import Receive, Scope, Send
from nemorouter.gateway.chat import ChatCompletionsEndpoint
from nemorouter.gateway.deferred import deferred_routes
from nemorouter.gateway.models import models_listing
from nemorouter.gateway.openapi import openapi_json
from nemorouter.gateway.readiness import readiness
from nemorouter.gateway.responses import JSONResponse
from nemorouter.gateway.ui import ui_routes
from nemorouter.gateway.ui_session import SessionGate
from nemorouter.types.errors import GatewayError, method_not_allowed, not_found_route
from nemorouter.wiring import Services

log = logging.getLogger("nemorouter.gateway")


class GatewayApp:
    """The ASGI entry point: chat completions go straight to their endpoint, the rest
    through Starlette. The hot path skips Starlette's middleware and router, which cost
    more than the gateway's own work on a small request."""

    def __init__(
        self, starlette: Starlette, chat: ChatCompletionsEndpoint, services: Services
    ) -> None:
        self.starlette = starlette
        self.chat = chat
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in CHAT_PATHS and scope["method"] == "POST":
            await self.chat(scope, receive, send)
        else:
            await self.starlette(scope, receive, send)


CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})


def create_app(config: Config) -> GatewayApp:
    """Build the gateway for `config`; providers connect when the server starts."""
    services = Services(config)  # every service, built once (nemorouter.wiring)
    chat = ChatCompletionsEndpoint(services.pipeline, config.max_body_bytes)
    created = int(time.time())

    async def list_models(request: Request) -> Response:
        await services.auth.resolve(request.headers.get("authorization", "").encode() or None)
        tags = parse_tags(request.query_params.get("tags"), "tags")
        return JSONResponse(models_listing(services.pool, created, tags))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        status, body = await readiness(services)
        return JSONResponse(body, status_code=status)

    async def metrics(request: Request) -> Response:
        body, content_type = services.metrics.exposition()
        return Response(body, media_type=content_type)

    async def openapi(request: Request) -> Response:
        return Response(openapi_json(), media_type="application/json")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.start()
        # Start-up objects live for the whole process: keep them out of every GC pass.
        gc.collect()
        gc.freeze()
        log.info("gateway ready: %d deployments", len(config.deployments))
        try:
            yield
        finally:
            await services.close()

    app = Starlette(
        routes=[
            *(Route(path, chat, methods=["POST"]) for path in CHAT_PATHS),  # 405 for other methods
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/models", list_models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"]),
            # LiteLLM's probe paths, which Kubernetes manifests copied from it name.
            Route("/health/liveliness", health, methods=["GET"]),
            Route("/health/readiness", ready, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            # Key administration and spend queries: services of `services` (issue 17, item 6).
            *deferred_routes(services),  # /v1/files, /v1/batches: deferred jobs
            *admin_routes(services, services.spend),
            *key_routes(services, services.key_admin, services.spend),
            *dashboard_admin_routes(services, services.spend),  # the dashboard's /admin/* reads
            *ui_routes(services),
        ],
        exception_handlers={GatewayError: _gateway_error, HTTPException: _http_error},
        middleware=[Middleware(SessionGate, services=services)],  # signed-out sessions
        lifespan=lifespan,
    )
    return GatewayApp(app, chat, services)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return Response(
        exc.to_json(), status_code=exc.status, headers=exc.headers, media_type="application/json"
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error = not_found_route(request.url.path)
    elif exc.status_code == 405:
        error = method_not_allowed(request.method, request.url.path)
        # RFC 9110: a 405 lists the methods the path takes, over every route on it.
        allowed = _allowed_methods(request)
        error.headers = {"allow": allowed} if allowed else dict(exc.headers or {})
    else:
        error = GatewayError(exc.status_code, "http_error", str(exc.detail))
    return await _gateway_error(request, error)


def _allowed_methods(request: Request) -> str:
    """Methods of every route on this path (several routes may share one path)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return ", ".join(sorted(methods))
