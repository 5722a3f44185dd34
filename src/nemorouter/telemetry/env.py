"""Where spans go: `settings.tracing`, else the standard OTEL_* environment variables.

Names and meanings from the OpenTelemetry specification, "OpenTelemetry Protocol Exporter"
(specification/protocol/exporter.md) and "Environment Variable Specification":
- OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the traces URL, used as is;
- OTEL_EXPORTER_OTLP_ENDPOINT: a base URL, to which OTLP/HTTP appends `v1/traces`;
- OTEL_EXPORTER_OTLP_TRACES_HEADERS / OTEL_EXPORTER_OTLP_HEADERS: `key=value` pairs,
  comma-separated, values URL-encoded (the W3C Baggage format);
- OTEL_SERVICE_NAME; OTEL_SDK_DISABLED=true turns tracing off whatever is set;
- OTEL_TRACES_SAMPLER_ARG: the ratio, when OTEL_TRACES_SAMPLER is a ratio sampler.
The config file wins over the environment: a `settings.tracing` entry is taken as written.
The gateway sends only the `http/json` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

from nemorouter.config_sections import TracingSettings

TRACES_PATH = "/v1/traces"
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")


def traces_url(endpoint: str) -> str:
    """A base endpoint gets `/v1/traces`; one that already names a path is used as is."""
    base = endpoint.rstrip("/")
    scheme_end = base.find("://")
    has_path = scheme_end >= 0 and "/" in base[scheme_end + 3 :]
    return base if has_path else base + TRACES_PATH


def parse_headers(text: str) -> dict[str, str]:
    headers = {}
    for pair in text.split(","):
        name, sep, value = pair.partition("=")
        if sep and name.strip():
            headers[unquote(name.strip())] = unquote(value.strip())
    return headers


def tracing_settings(
    configured: TracingSettings | None, env: Mapping[str, str]
) -> tuple[TracingSettings, str] | None:
    """The tracing settings and the traces URL, or None when tracing is off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if configured is not None:
        if not configured.otlp_endpoint:
            return None
        return configured, traces_url(configured.otlp_endpoint)
    url = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if not url:
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        if not base:
            return None
        url = base.rstrip("/") + TRACES_PATH  # a base, whatever its path (the spec says so)
    headers = parse_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS", ""))
    headers.update(parse_headers(env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "")))
    ratio = 1.0
    if env.get("OTEL_TRACES_SAMPLER", "").strip().lower() in _RATIO_SAMPLERS:
        try:
            ratio = min(max(float(env.get("OTEL_TRACES_SAMPLER_ARG", "1")), 0.0), 1.0)
        except ValueError:
            ratio = 1.0
    settings = TracingSettings(
        otlp_endpoint=url,
        service_name=env.get("OTEL_SERVICE_NAME", "").strip() or "nemorouter",
        sample_ratio=ratio,
        headers=headers,
    )
    return settings, url
