"""GET /openapi.json: the gateway's HTTP contract (DESIGN §2) in machine-readable form.

The document is a data file shipped with the package (openapi.yaml), read and rendered
to JSON on the first request for it and kept: building it at start cost every gateway
~0.3 s and ~2.5 MiB of resident memory for a page few ever fetch.
"""

from __future__ import annotations

from contextlib import suppress
from functools import cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
import yaml


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document, with the installed package's version."""
    text = resources.files("nemorouter.gateway").joinpath("openapi.yaml").read_text("utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
    document: dict[str, Any] = yaml.load(text, Loader=loader)
    # A source tree that was never installed keeps the file's version.
    with suppress(PackageNotFoundError):
        document["info"]["version"] = version("nemorouter")
    return document


@cache
def openapi_json() -> bytes:
    """The document as JSON bytes, built once per process."""
    return orjson.dumps(openapi_document())
