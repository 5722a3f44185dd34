"""The gateway's own request fields (DESIGN §2.1), decoded and checked once at the edge.

`tags`, `metadata` (its `job_id` and `tags`), `nemo_cache` / LiteLLM's `cache`, `fallbacks`
and `disable_fallbacks` arrive in the OpenAI body; the edge removes them from the body and
decodes them here into `GatewayOptions`, so no later stage reads or checks them again. A
request without any of them shares `NO_OPTIONS` (nothing is allocated for it).
"""

from __future__ import annotations

import re
from typing import Any

from nemorouter.types.errors import invalid_request

# Fields of ours (and LiteLLM's) that an upstream OpenAI API must not see.
GATEWAY_FIELDS = ("tags", "metadata", "nemo_cache", "cache", "fallbacks", "disable_fallbacks")
# The spend row's job id column (store/schema.py uses this bound).
MAX_JOB_ID = 200
# LiteLLM users put job ids among their tags as `job:<id>`; those are not capabilities.
JOB_TAG_PREFIX = "job:"
_TAG = re.compile(r"^[a-z0-9][a-z0-9._:-]*$")
# LiteLLM's per-request cache controls and the type each takes.
LITELLM_CACHE: dict[str, type] = {
    "no-cache": bool,
    "no-store": bool,
    "ttl": int,
    "s-maxage": int,
    "namespace": str,
}


class GatewayOptions:
    """The decoded gateway fields of one request."""

    __slots__ = (
        "cache_read",
        "cache_write",
        "disable_fallbacks",
        "fallbacks",
        "job_id",
        "job_tag",
        "metadata",
        "tags",
    )

    def __init__(
        self,
        tags: frozenset[str] = frozenset(),
        metadata: dict[str, Any] | None = None,
        job_id: str | None = None,
        job_tag: str | None = None,
        cache_read: bool = True,
        cache_write: bool = True,
        fallbacks: list[str] | None = None,
        disable_fallbacks: bool = False,
    ) -> None:
        self.tags = tags  # capability tags named in the body (`tags` and `metadata.tags`)
        self.metadata = metadata  # the `metadata` object as sent
        self.job_id = job_id  # `metadata.job_id`, checked
        # The first `job:<id>` in `metadata.tags`: used (and checked) only when neither
        # `metadata.job_id` nor the job header names the job.
        self.job_tag = job_tag
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.fallbacks = fallbacks  # model names overriding the configured chain
        self.disable_fallbacks = disable_fallbacks


NO_OPTIONS = GatewayOptions()


def decode_options(fields: dict[str, Any]) -> GatewayOptions:
    """Check and decode the gateway fields taken from a body (a 400 names the bad one)."""
    if not fields:
        return NO_OPTIONS
    metadata = fields.get("metadata")
    job_id = job_tag = None
    if isinstance(metadata, dict):
        value = metadata.get("job_id")
        if value is not None:
            job_id = checked_job_id(value, "metadata.job_id")
    cache_read, cache_write = cache_controls(fields)
    tags = parse_tags(fields.get("tags"), "tags")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid_request("'metadata' must be an object.", "metadata")
    if metadata:
        named, job_tag = _tags_and_job(metadata.get("tags"), "metadata.tags")
        tags |= named
    disable = fields.get("disable_fallbacks", False)
    if not isinstance(disable, bool):
        raise invalid_request("'disable_fallbacks' must be a boolean.", "disable_fallbacks")
    fallbacks = None if disable else fields.get("fallbacks")
    if fallbacks is not None and (
        not isinstance(fallbacks, list) or not all(isinstance(m, str) for m in fallbacks)
    ):
        raise invalid_request("'fallbacks' must be a list of model names.", "fallbacks")
    return GatewayOptions(
        tags, metadata, job_id, job_tag, cache_read, cache_write, fallbacks, disable
    )


def parse_tags(value: Any, where: str) -> frozenset[str]:
    """A list of tags or one comma-separated string, normalised to lower case; `job:<id>`
    entries are left out (they name a job, not a capability)."""
    return _tags_and_job(value, where)[0]


def _tags_and_job(value: Any, where: str) -> tuple[frozenset[str], str | None]:
    """The capability tags, and the first `job:<id>`'s id (as written), in one pass."""
    if value is None:
        return frozenset(), None
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise invalid_request(
            f"'{where}' must be a list of tags or a comma-separated string.", where
        )
    tags = set()
    job = None
    for item in items:
        if not isinstance(item, str):
            raise invalid_request(f"'{where}' must contain only strings.", where)
        tag = item.strip().lower()
        if not tag:
            continue
        if tag.startswith(JOB_TAG_PREFIX):
            if job is None:
                job = item.strip()[len(JOB_TAG_PREFIX) :]
            continue
        if len(tag) > 64 or not _TAG.match(tag):
            raise invalid_request(f"'{where}' has an invalid tag {item!r}.", where)
        tags.add(tag)
    return frozenset(tags), job


def checked_job_id(value: Any, where: str) -> str:
    """A job id as stored: a non-empty string (an integer is taken as its digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > MAX_JOB_ID or "\x00" in value:
        raise invalid_request(
            f"'{where}' must be a non-empty string of at most {MAX_JOB_ID} characters, "
            "without NUL.",
            where,
        )
    return value


def cache_controls(fields: dict[str, Any]) -> tuple[bool, bool]:
    """(read, write) for one request, from `nemo_cache` and LiteLLM's `cache` object.

    `nemo_cache: false` turns both off; `cache: {"no-cache": true}` skips the read and
    `{"no-store": true}` the write. LiteLLM's ttl, s-maxage and namespace are accepted
    (type-checked) but not applied. Malformed values are a 400, not silently ignored."""
    read = write = True
    flag = fields.get("nemo_cache")
    if flag is not None:
        if not isinstance(flag, bool):
            raise invalid_request("'nemo_cache' must be a boolean.", "nemo_cache")
        read = write = flag
    spec = fields.get("cache")
    if spec is None:
        return read, write
    if not isinstance(spec, dict):
        raise invalid_request(
            '\'cache\' must be an object such as {"no-cache": true} or {"no-store": true}.',
            "cache",
        )
    for name, value in spec.items():
        expected = LITELLM_CACHE.get(name)
        if expected is None:
            known = ", ".join(LITELLM_CACHE)
            raise invalid_request(
                f"'cache.{name}' is not a cache control; known: {known}.", "cache"
            )
        if value is None:
            continue
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            kind = {bool: "a boolean", int: "an integer", str: "a string"}[expected]
            raise invalid_request(f"'cache.{name}' must be {kind}.", "cache")
        if expected is int and value < 0:
            raise invalid_request(f"'cache.{name}' must not be negative.", "cache")
    if spec.get("no-cache") is True:
        read = False
    if spec.get("no-store") is True:
        write = False
    return read, write
