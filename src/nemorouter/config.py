"""The configuration file: schema, `os.environ/NAME` references and cross-checks.

Everything wrong with a config is reported as a `ConfigError` naming the key path
(`deployments[2].provider: ...`), so an operator can fix the file without reading code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from nemorouter.catalog import CatalogModel, load_catalog
from nemorouter.config_pricing import PricingConfig
from nemorouter.config_sections import (
    BreakerSettings,
    CacheSettings,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    RedisDownSettings,
    RetrySettings,
    Section,
    TracingSettings,
)
from nemorouter.config_sections_deferred import DeferredSettings

ENV_PREFIX = "os.environ/"
RESERVED_MODEL_NAMES = frozenset({"auto"})
# Default room past request_timeout_s for the rest of a request's attempts (Settings.deadline_s).
DEADLINE_MARGIN_S = 30.0
# The master key signs dashboard sessions and opens the admin API; 16 characters of a
# random secret is the least that is not worth guessing online.
MIN_MASTER_KEY_CHARS = 16

Tag = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._:-]*$", max_length=64)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ProviderType = Literal[
    "vertex", "anthropic-vertex", "gemini", "anthropic", "openai", "openai-compatible"
]
# Provider types that may authenticate with Google credentials (`auth: google`).
GOOGLE_AUTH_TYPES = frozenset({"vertex", "anthropic-vertex", "openai-compatible"})


class ConfigError(ValueError):
    """A configuration problem, located by its key path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class Settings(Section):
    # A guessable master key opens the whole admin API: see MIN_MASTER_KEY_CHARS.
    master_key: Annotated[str, msgspec.Meta(min_length=MIN_MASTER_KEY_CHARS)]
    database_url: str = "sqlite:///./nemorouter.db"
    # The spend log's local files; default: beside the SQLite file, else the working folder.
    # The journal holds records a shutdown could not write (replayed at the next start); the
    # dead-letter file, records the database refused (docs/gateway.md "Spend records").
    spend_journal_dir: str | None = None
    spend_dead_letter_path: str | None = None
    redis_url: str | None = None
    request_timeout_s: PositiveFloat = 120.0
    connect_timeout_s: PositiveFloat = 10.0
    max_body_mb: PositiveFloat = 50.0
    # Bounds of what a provider's answer may hold: a whole body (decompressed, if the provider
    # compressed it) and one event of a stream. Beyond them the call fails as malformed.
    max_upstream_body_mb: PositiveFloat = 32.0
    max_upstream_event_mb: PositiveFloat = 8.0
    # Retries of a retryable upstream failure before the chain link fails: the default of
    # every failure class of `retry` (which may set its own).
    retries: NonNegativeInt = 1
    retry: RetrySettings = RetrySettings()
    # Every attempt, backoff and quota wait of one request ends by this deadline (a 504
    # listing the attempts). Unset: request_timeout_s + DEADLINE_MARGIN_S, see below.
    request_deadline_s: PositiveFloat | None = None
    # Longest wait for room in a deployment's rpm/tpm quota when every deployment of the
    # model is at its ceiling; then that chain link fails and the next one is tried.
    queue_timeout_s: PositiveFloat = 30.0
    # Tags required of requests that name none (until per-key default tags exist).
    default_tags: tuple[Tag, ...] = ()
    cache: CacheSettings = CacheSettings()
    breaker: BreakerSettings = BreakerSettings()
    redis_down: RedisDownSettings = RedisDownSettings()
    tracing: TracingSettings | None = None
    deferred: DeferredSettings = DeferredSettings()

    @property
    def deadline_s(self) -> float:
        """The whole-request deadline. By default one attempt may use its whole timeout (a
        hung provider is only noticed then) and DEADLINE_MARGIN_S more is left for the
        backoffs and a fallback, which for a page answers in seconds."""
        if self.request_deadline_s is not None:
            return self.request_deadline_s
        return self.request_timeout_s + DEADLINE_MARGIN_S


class ProviderConfig(Section):
    type: ProviderType
    base_url: str | None = None
    api_key: str | None = None
    project: str | None = None
    location: str | None = None
    # Google credentials: a file google-auth reads (or its JSON); unset: Application Default
    # Credentials. vertex / anthropic-vertex take their project from them when unset.
    credentials: str | None = None
    # google: a refreshed Google access token (openai-compatible: Vertex AI's OpenAI
    # endpoint); api_key: `api_key`. Unset: google on vertex types (but for an api_key alone).
    auth: Literal["api_key", "google"] | None = None
    max_connections: PositiveInt = 512
    # vertex, anthropic-vertex: where batch inference inputs and outputs are staged
    # (`gs://bucket/prefix`);
    # unset: the provider's lines are not sent to Vertex batch inference.
    batch_bucket: str | None = None
    # The Cloud Storage JSON API origin batch staging talks to (default
    # https://storage.googleapis.com; a private endpoint, or a simulator in tests).
    storage_url: str | None = None

    @property
    def google_auth(self) -> bool:
        """Whether calls carry a Google access token rather than `api_key`."""
        if self.auth is not None:
            return self.auth == "google"
        vertex = self.type in ("vertex", "anthropic-vertex")
        return vertex and (bool(self.credentials) or not self.api_key)


class DeploymentConfig(Section):
    id: Name
    model: Name
    provider: Name
    provider_model: str | None = None
    rpm: NonNegativeInt | None = None
    tpm: NonNegativeInt | None = None
    tags: tuple[Tag, ...] = ()
    pricing: PricingConfig | None = None
    context_window: PositiveInt | None = None
    max_output_tokens: PositiveInt | None = None
    # `pages`: the gateway renders PDFs into page images for this deployment (its model reads
    # images but not PDFs), so it serves `pdf` requests (DESIGN §2.4).
    pdf: Literal["pages"] | None = None
    pdf_dpi: Annotated[int, msgspec.Meta(ge=36, le=600)] = 150
    pdf_max_side: Annotated[int, msgspec.Meta(ge=256, le=10000)] = 2000  # px, the longer side
    # Deferred jobs (/v1/batches): false keeps this deployment's lines off its provider's batch
    # API (they run interactively); `batch_discount` states the share of the price the
    # provider's batch API charges where the catalog knows none (an openai-compatible endpoint).
    batch: bool = True
    batch_discount: Decimal | None = None

    @property
    def upstream_model(self) -> str:
        return self.provider_model or self.model


class Config(Section):
    settings: Settings
    providers: dict[Name, ProviderConfig]
    deployments: tuple[DeploymentConfig, ...]
    groups: dict[Name, tuple[Name, ...]] = {}

    @property
    def max_body_bytes(self) -> int:
        return int(self.settings.max_body_mb * 1024 * 1024)

    @property
    def model_names(self) -> list[str]:
        """Deployed model names in config order, each once."""
        return list(dict.fromkeys(d.model for d in self.deployments))


# --- loading -----------------------------------------------------------------------------


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, resolve and validate a YAML config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "",
            f"no config file at {path}. Start from the example: "
            f"`nemorouter config example > {path}` (or run `nemorouter demo`, which needs none)",
        ) from None
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise ConfigError("", f"not valid YAML at {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{path} is not valid YAML: {exc}") from None
    return parse_config(data, env, source=str(path))


# libyaml's safe loader when PyYAML was built with it (several times faster at start).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_config(data: Any, env: Mapping[str, str] | None = None, source: str = "FILE") -> Config:
    if not isinstance(data, dict):
        raise ConfigError("", "the config must be a mapping with settings, providers, deployments")
    _refuse_litellm(data, source)  # before env references: its os.environ/ names are not ours
    data = _resolve_env(data, "", os.environ if env is None else env)
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise ConfigError(unknown[0], f"unknown section (expected one of {sorted(_SECTIONS)})")
    for section in ("settings", "providers", "deployments"):
        if data.get(section) is None:
            raise ConfigError(section, "this section is required")
    # Sections are converted piecewise so an error inside a mapping names its key
    # (msgspec alone would say `providers[...]`).
    config = Config(
        settings=_convert(data["settings"], Settings, "settings"),
        providers={
            name: _convert(value, ProviderConfig, f"providers.{name}")
            for name, value in _mapping(data["providers"], "providers").items()
        },
        deployments=tuple(
            _convert(value, DeploymentConfig, f"deployments[{i}]")
            for i, value in enumerate(_sequence(data["deployments"], "deployments"))
        ),
        groups={
            name: _convert(value, tuple[Name, ...], f"groups.{name}")
            for name, value in _mapping(data.get("groups") or {}, "groups").items()
        },
    )
    _check(config)
    return config


_SECTIONS = frozenset({"settings", "providers", "deployments", "groups"})
# A LiteLLM proxy config's top-level keys (docs.litellm.ai/docs/proxy/configs).
LITELLM_SECTIONS = ("model_list", "litellm_settings", "router_settings", "general_settings")


def _refuse_litellm(data: dict[Any, Any], source: str) -> None:
    found = [key for key in LITELLM_SECTIONS if key in data]
    if found:
        raise ConfigError(
            found[0],
            f"this is a LiteLLM config ({', '.join(found)}), not a nemorouter one. Convert it: "
            f"`nemorouter config from-litellm {source} -o nemorouter.yaml` (what cannot be "
            "translated is listed at the top of the output)",
        )


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$")


def _convert(value: Any, kind: Any, path: str) -> Any:
    """msgspec conversion; its "msg - at `$.a[0]`" becomes ConfigError(path + ".a[0]", msg)."""
    try:
        return msgspec.convert(value, kind, strict=False)
    except msgspec.ValidationError as exc:
        match = _AT.match(str(exc))
        assert match is not None
        message = match["msg"]
        where = path + (match["path"] or "")
        if where == "settings.master_key" and "length" in message:
            raise ConfigError(
                where,
                f"must be at least {MIN_MASTER_KEY_CHARS} characters: use a long random secret "
                "(for example `openssl rand -hex 24`)",
            ) from None
        raise ConfigError(path + (match["path"] or ""), message[:1].lower() + message[1:]) from None


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(path, "expected a mapping of names to entries")
    return {str(k): v for k, v in value.items()}


def _sequence(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(path, "expected a list")
    return value


def _resolve_env(node: Any, path: str, env: Mapping[str, str]) -> Any:
    """Replace every `os.environ/NAME` string by the variable's value."""
    if isinstance(node, dict):
        return {k: _resolve_env(v, f"{path}.{k}" if path else str(k), env) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_env(v, f"{path}[{i}]", env) for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith(ENV_PREFIX):
        name = node[len(ENV_PREFIX) :]
        if name not in env:
            raise ConfigError(path, f"environment variable {name} is not set")
        return env[name]
    return node


# --- cross-checks ------------------------------------------------------------------------

_NEEDS = {
    # `project` may come from the Google credentials (checked when the provider is built)
    "vertex": ("location",),
    "anthropic-vertex": ("location",),
    "gemini": ("api_key",),
    "anthropic": ("api_key",),
    "openai": ("api_key",),
    "openai-compatible": ("base_url",),
}


def _check(config: Config) -> None:
    for name, provider in config.providers.items():
        for field in _NEEDS[provider.type]:
            if not getattr(provider, field):
                raise ConfigError(
                    f"providers.{name}.{field}", f"required for a provider of type {provider.type}"
                )
        if provider.base_url and not provider.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"providers.{name}.base_url", "must start with http:// or https://")
        if provider.storage_url and not provider.storage_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"providers.{name}.storage_url", "must start with http:// or https://"
            )
        _check_batch_bucket(name, provider)
        _check_auth(name, provider)
    if not config.deployments:
        raise ConfigError("deployments", "at least one deployment is required")
    _check_redis_down(config.settings.redis_down)
    catalog = load_catalog()
    seen_ids: set[str] = set()
    for i, dep in enumerate(config.deployments):
        _check_deployment(config, dep, f"deployments[{i}]", catalog)
        if dep.id in seen_ids:
            raise ConfigError(f"deployments[{i}].id", f"duplicate deployment id {dep.id!r}")
        seen_ids.add(dep.id)
    _check_groups(config)


def _check_auth(name: str, provider: ProviderConfig) -> None:
    path, kind = f"providers.{name}", provider.type
    has_key = bool(provider.api_key) and str(provider.api_key).lower() != "none"
    if provider.auth == "google" and (kind not in GOOGLE_AUTH_TYPES or has_key):
        why = f"only for {', '.join(sorted(GOOGLE_AUTH_TYPES))}"
        why = "remove api_key" if kind in GOOGLE_AUTH_TYPES else why
        raise ConfigError(f"{path}.auth", f"auth: google sends a Google token: {why}")
    if provider.auth == "api_key" and not has_key and kind != "openai-compatible":
        raise ConfigError(f"{path}.api_key", "required with auth: api_key")
    if provider.credentials and not provider.google_auth:
        hint = "set auth: google" if kind in GOOGLE_AUTH_TYPES else "this type takes an api_key"
        raise ConfigError(f"{path}.credentials", f"Google credentials are not used here: {hint}")


def _check_batch_bucket(name: str, provider: ProviderConfig) -> None:
    vertex = provider.type in ("vertex", "anthropic-vertex")
    if provider.storage_url and not vertex:
        raise ConfigError(f"providers.{name}.storage_url", "only Vertex AI providers use it")
    bucket = provider.batch_bucket
    if bucket is None:
        return
    path = f"providers.{name}.batch_bucket"
    if not vertex:
        raise ConfigError(path, "only Vertex AI providers stage batches in Cloud Storage")
    if not bucket.startswith("gs://") or not bucket[5:].split("/", 1)[0]:
        raise ConfigError(path, "must look like gs://bucket or gs://bucket/prefix")


def _check_redis_down(redis_down: RedisDownSettings) -> None:
    for field in ("rate_limits", "breakers"):
        value = getattr(redis_down, field)
        if value not in ("closed", "open"):
            raise ConfigError(
                f"settings.redis_down.{field}",
                f"must be 'closed' (503 while Redis is down) or 'open' (go on without it), "
                f"not {value!r}",
            )


def _check_deployment(
    config: Config, dep: DeploymentConfig, path: str, catalog: dict[str, CatalogModel]
) -> None:
    if dep.provider not in config.providers:
        known = ", ".join(sorted(config.providers)) or "none"
        raise ConfigError(f"{path}.provider", f"unknown provider {dep.provider!r} (known: {known})")
    if dep.model in RESERVED_MODEL_NAMES:
        raise ConfigError(f"{path}.model", f"{dep.model!r} is reserved")
    if dep.pricing is not None:
        _check_pricing(dep.pricing, f"{path}.pricing")
    if dep.batch_discount is not None and not 0 < dep.batch_discount <= 1:
        raise ConfigError(f"{path}.batch_discount", "a share of the price in (0, 1], e.g. 0.5")
    if dep.model not in catalog:
        # Never charged $0 for want of a price: an unknown model states its own.
        missing = [f for f in ("pricing", "context_window") if getattr(dep, f) is None]
        if missing:
            raise ConfigError(
                f"{path}.model",
                f"deployment {dep.id!r}: {dep.model!r} is not in the catalog; declare "
                f"{' and '.join(missing)} (and tags) for it",
            )
        assert dep.pricing is not None
        for field in ("input_per_mtok", "output_per_mtok"):
            if getattr(dep.pricing, field) is None:
                raise ConfigError(
                    f"{path}.pricing.{field}",
                    f"deployment {dep.id!r}: {dep.model!r} is not in the catalog, so its "
                    "pricing must state input_per_mtok and output_per_mtok",
                )
    if dep.pdf == "pages":  # page images need a model that reads images
        facts = catalog.get(dep.model)
        tags = set(dep.tags) | (facts.capabilities if facts else set())
        if "vision" not in tags:
            raise ConfigError(
                f"{path}.pdf", f"`pdf: pages` sends page images, and {dep.model!r} lacks `vision`"
            )


def _check_pricing(pricing: PricingConfig, path: str) -> None:
    for where, message in pricing.problems():
        raise ConfigError(f"{path}.{where}", message)


def _check_groups(config: Config) -> None:
    models = set(config.model_names)
    for name, members in config.groups.items():
        path = f"groups.{name}"
        if name in models or name in RESERVED_MODEL_NAMES:
            raise ConfigError(path, f"group name {name!r} clashes with a model name")
        if not members:
            raise ConfigError(path, "a group needs at least one model")
        for j, member in enumerate(members):
            if member not in models:
                raise ConfigError(
                    f"{path}[{j}]", f"unknown model {member!r} (no deployment serves it)"
                )
        if len(set(members)) != len(members):
            raise ConfigError(path, "a model appears twice in the chain")
