"""GET /openapi.json: the gateway's HTTP contract (DESIGN §2) in machine-readable form.

The document is a data file shipped with the package (openapi.yaml), read and rendered
to JSON once when the app is built, never per request.
"""

from __future__ import annotations

from contextlib import suppress
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
import yaml


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document, with the installed package's version."""
    text = resources.files("nemorouter.gateway").joinpath("openapi.yaml").read_text("utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    # A source tree that was never installed keeps the file's version.
    with suppress(PackageNotFoundError):
        document["info"]["version"] = version("nemorouter")
    return document


def openapi_json() -> bytes:
    return orjson.dumps(openapi_document())
