"""Bounded reads of request bodies on the Starlette routes (admin API, dashboard sign-in).

`Request.body()` reads whatever the client sends into memory, unauthenticated; every body
these routes take is small, so each is read against its own limit and refused with 413 as
soon as it is exceeded (before a byte is read when Content-Length says so).
"""

from __future__ import annotations

from starlette.requests import Request

from nemorouter.types.errors import invalid_request, request_too_large

# A key or team: a name, a few model names and tags, numbers. 64 KiB is hundreds of models.
ADMIN_BODY_BYTES = 64 * 1024
# The sign-in form: the master key and a `next` path.
LOGIN_FORM_BYTES = 4096


async def bounded_body(request: Request, limit: int, bound: str) -> bytes:
    """The body, or 413 naming `bound` (what sets the limit) once it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise invalid_request("Invalid Content-Length header.")
        if int(declared) > limit:
            raise request_too_large(limit, bound)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise request_too_large(limit, bound)
        parts.append(chunk)
    return b"".join(parts)
