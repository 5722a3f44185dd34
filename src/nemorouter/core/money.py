"""Re-export shim: money lives on the floor (nemorouter.types.money).

Kept only so branches written against the old path still merge; delete once nothing imports it.
"""

from nemorouter.types.money import (
    MILLION_TOKENS,
    PICO,
    from_pico,
    per_request,
    pico_usd,
    quantize,
    to_pico,
    usd,
)

__all__ = [
    "MILLION_TOKENS",
    "PICO",
    "from_pico",
    "per_request",
    "pico_usd",
    "quantize",
    "to_pico",
    "usd",
]
