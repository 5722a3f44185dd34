"""Which capability tags a request needs (DESIGN §2.2).

Required = explicit tags (body `tags`, `metadata.tags`, the `x-nemo-tags` or LiteLLM's
`x-litellm-tags` header), or the default tags when the request names none; plus implied
tags: an image part needs `vision`, a `json_schema` response format `structured-output`.
"""

from __future__ import annotations

import re
from typing import Any

from nemorouter.core.request import ChatRequest
from nemorouter.types.errors import invalid_request

_TAG = re.compile(r"^[a-z0-9][a-z0-9._:-]*$")
# LiteLLM users put job ids among their tags as `job:<id>`; those are not capabilities.
JOB_TAG_PREFIX = "job:"


def parse_tags(value: Any, where: str) -> frozenset[str]:
    """A list of tags or one comma-separated string, normalised to lower case."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise invalid_request(
            f"'{where}' must be a list of tags or a comma-separated string.", where
        )
    tags = set()
    for item in items:
        if not isinstance(item, str):
            raise invalid_request(f"'{where}' must contain only strings.", where)
        tag = item.strip().lower()
        if not tag or tag.startswith(JOB_TAG_PREFIX):
            continue
        if len(tag) > 64 or not _TAG.match(tag):
            raise invalid_request(f"'{where}' has an invalid tag {item!r}.", where)
        tags.add(tag)
    return frozenset(tags)


def explicit_tags(request: ChatRequest, header: bytes | None) -> frozenset[str]:
    """The tags the request names itself, from every place it may name them."""
    tags = parse_tags(request.extras.get("tags"), "tags")
    metadata = request.extras.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid_request("'metadata' must be an object.", "metadata")
    if metadata:
        tags |= parse_tags(metadata.get("tags"), "metadata.tags")
    if header:
        tags |= parse_tags(header.decode("latin-1"), "x-nemo-tags")
    return tags


def implied_tags(request: ChatRequest) -> frozenset[str]:
    implied = set()
    if request.images:
        implied.add("vision")
    if request.wants_json_schema:
        implied.add("structured-output")
    return frozenset(implied)


def required_tags(
    request: ChatRequest, header: bytes | None, default_tags: frozenset[str]
) -> frozenset[str]:
    return (explicit_tags(request, header) or default_tags) | implied_tags(request)
