"""/openapi.json is truthful: every route of the app is documented, every documented
route exists, and the document is a valid OpenAPI 3.1 document."""

from __future__ import annotations

import re

import schemathesis
from starlette.routing import Mount, Route

from nemorouter.config import parse_config
from nemorouter.gateway.app import create_app
from nemorouter.gateway.openapi import openapi_document

CONFIG = {
    "settings": {"master_key": "sk-test-master-key", "database_url": "sqlite:///:memory:"},
    "providers": {"sim": {"type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}},
    "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "sim"}],
}
API_PREFIXES = ("/v1/", "/chat/", "/models", "/admin/")
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def served_operations() -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app answers, paths in OpenAPI's template form."""
    app = create_app(parse_config(CONFIG, env={}))
    found: set[tuple[str, str]] = set()
    for route in app.starlette.routes:
        if isinstance(route, Mount):  # static files: any file name below the mount
            found.add(("GET", f"{route.path}/{{file}}"))
        elif isinstance(route, Route):
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {job_id:path} -> {job_id}
            found |= {(method, path) for method in route.methods or () if method != "HEAD"}
    return found


def documented_operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    served, documented = served_operations(), documented_operations()
    assert served - documented == set(), "routes missing from openapi.yaml"
    assert documented - served == set(), "documented routes the app does not serve"
    assert ("POST", "/v1/chat/completions") in documented  # the comparison saw real routes


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()  # raises on a document that breaks the OpenAPI 3.1 meta-schema
    operations = [result.ok() for result in schema.get_all_operations()]  # refs resolve
    assert len(operations) == len(documented_operations())


def test_every_operation_documents_its_errors_in_the_openai_shape() -> None:
    document = openapi_document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS or not path.startswith(API_PREFIXES):
                continue  # /ui answers HTML; /health/ready's 503 is its own report
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert response["$ref"].startswith("#/components/responses/"), (method, path)
