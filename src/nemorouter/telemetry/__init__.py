"""OpenTelemetry traces without the SDK: spans built only when tracing is on, exported in
the background as OTLP/HTTP JSON (spans.py: spans, sampling, W3C traceparent; otlp.py: the
batching exporter). Off by default; wiring.py builds it from `settings.tracing` or the
standard OTEL_* environment variables (env.py)."""
