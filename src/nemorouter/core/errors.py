"""Re-export shim: the gateway's errors live on the floor (nemorouter.types.errors).

Kept only so branches written against the old path still merge; delete once nothing imports it.
"""

from nemorouter.types.errors import (
    GatewayError,
    invalid_api_key,
    invalid_request,
    method_not_allowed,
    model_not_found,
    not_found_route,
    request_too_large,
    service_unavailable,
)

__all__ = [
    "GatewayError",
    "invalid_api_key",
    "invalid_request",
    "method_not_allowed",
    "model_not_found",
    "not_found_route",
    "request_too_large",
    "service_unavailable",
]
