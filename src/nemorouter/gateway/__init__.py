"""The HTTP surface: routes, framing and error answers; no business logic."""
