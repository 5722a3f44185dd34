"""Errors the gateway answers with, in the OpenAI error shape (DESIGN §2.1)."""

from __future__ import annotations

from collections.abc import Iterable

import orjson

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
}


class GatewayError(Exception):
    """An answer the client gets instead of a completion."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}
        # How far routing got before the error (for the spend record).
        self.attempts = 0
        self.fallbacks = 0

    @property
    def type(self) -> str:
        return _TYPE_BY_STATUS.get(self.status, "api_error")

    def body(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.body())


def invalid_request(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, "invalid_request", message, param=param)


def invalid_api_key() -> GatewayError:
    return GatewayError(
        401,
        "invalid_api_key",
        "Missing or invalid API key: send 'Authorization: Bearer <key>'.",
    )


def model_not_found(model: str, known: Iterable[str]) -> GatewayError:
    names = ", ".join(sorted(known))
    return GatewayError(
        404,
        "model_not_found",
        f"The model {model!r} does not exist here. Available: auto, {names}.",
        param="model",
    )


def request_too_large(limit_bytes: int, bound: str = "settings.max_body_mb") -> GatewayError:
    return GatewayError(
        413,
        "request_too_large",
        f"Request body exceeds the limit of {limit_bytes} bytes ({bound}).",
    )


def not_found_route(path: str) -> GatewayError:
    return GatewayError(404, "not_found", f"No route for {path}.")


def method_not_allowed(method: str, path: str) -> GatewayError:
    return GatewayError(405, "method_not_allowed", f"{method} is not allowed on {path}.")


def service_unavailable(what: str, retry_after_s: int = 5) -> GatewayError:
    """A shared store the request needs (Redis, the database) cannot be reached: the
    client should come back, not give up (DESIGN §2.1)."""
    return GatewayError(
        503,
        "service_unavailable",
        f"{what} is unreachable; retry after {retry_after_s} s.",
        headers={"retry-after": str(retry_after_s)},
    )
