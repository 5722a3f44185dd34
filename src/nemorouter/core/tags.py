"""Which capability tags a request needs (DESIGN §2.2).

Required = explicit tags (body `tags`, `metadata.tags`, the `x-nemo-tags` or LiteLLM's
`x-litellm-tags` header), or the default tags when the request names none; plus implied
tags: an image part needs `vision`, a PDF `file` part `pdf`, a `json_schema` response
format `structured-output`.
"""

from __future__ import annotations

from nemorouter.types.options import JOB_TAG_PREFIX, parse_tags
from nemorouter.types.request import ChatRequest

__all__ = ["JOB_TAG_PREFIX", "explicit_tags", "implied_tags", "parse_tags", "required_tags"]


def explicit_tags(request: ChatRequest, header: bytes | None) -> frozenset[str]:
    """The tags the request names itself, from every place it may name them."""
    tags = request.options.tags
    if header:
        tags |= parse_tags(header.decode("latin-1"), "x-nemo-tags")
    return tags


def implied_tags(request: ChatRequest) -> frozenset[str]:
    implied = set()
    if request.images:
        implied.add("vision")
    if request.documents and request.has_pdf:  # read at the edge (core/documents.py)
        implied.add("pdf")
    if request.wants_json_schema:
        implied.add("structured-output")
    return frozenset(implied)


def required_tags(
    request: ChatRequest, header: bytes | None, default_tags: frozenset[str]
) -> frozenset[str]:
    return (explicit_tags(request, header) or default_tags) | implied_tags(request)
