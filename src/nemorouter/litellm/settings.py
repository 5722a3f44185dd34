"""LiteLLM's `general_settings`, `router_settings` and `litellm_settings` as nemorouter
`settings` (and key/team commands): part of `nemorouter config from-litellm`.

Names and meanings: BerriAI/litellm docs/my-website/docs/proxy/config_settings.md
("router_settings - Reference": num_retries, timeout, allowed_fails "cooldown model if it fails
> 1 call in a minute", cooldown_time, redis_host/port/password/db; "litellm_settings":
request_timeout, cache, cache_params {type, host, port, password, ttl, mode};
default_key_generate_params / upperbound_key_generate_params {max_budget, budget_duration,
rpm_limit, tpm_limit, models}, default_team_settings); virtual_keys.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nemorouter.config import ENV_PREFIX, MIN_MASTER_KEY_CHARS

if TYPE_CHECKING:
    from nemorouter.litellm.convert import Conversion

MASTER_KEY_ENV = "os.environ/NEMOROUTER_MASTER_KEY"
# LiteLLM budget_duration values nemorouter's budget_period can say.
_PERIODS = {"1d": "daily", "24h": "daily", "30d": "monthly", "1mo": "monthly"}
# Keys this module reads; anything else in the three sections is reported.
_READ = {
    "general_settings": {"master_key", "database_url"},
    "router_settings": {"num_retries", "timeout", "allowed_fails", "cooldown_time", "redis_url",
                        "redis_host", "redis_port", "redis_password", "redis_db", "fallbacks",
                        "model_group_alias", "context_window_fallbacks",
                        "content_policy_fallbacks", "default_fallbacks"},
    "litellm_settings": {"num_retries", "request_timeout", "allowed_fails", "cooldown_time",
                         "cache", "cache_params", "fallbacks", "context_window_fallbacks",
                         "content_policy_fallbacks", "default_fallbacks", "vertex_project",
                         "vertex_location", "default_key_generate_params",
                         "upperbound_key_generate_params", "default_team_settings"},
}  # fmt: skip


def translate_settings(
    general: dict[str, Any],
    *,
    out: Conversion,
    litellm_settings: dict[str, Any],
    router_settings: dict[str, Any],
) -> dict[str, Any]:
    # router_settings overrides litellm_settings where both say a thing (LiteLLM's docs).
    both = {**litellm_settings, **router_settings}
    settings: dict[str, Any] = {"master_key": _master_key(general.get("master_key"), out)}
    if general.get("database_url"):
        settings["database_url"] = general["database_url"]
        out.notes.append(
            "general_settings.database_url: nemorouter keeps its own tables; LiteLLM's keys, "
            "teams and spend are not migrated (create keys again, see below)"
        )
    redis_url = _redis_url(router_settings, litellm_settings.get("cache_params") or {}, out)
    if redis_url:
        settings["redis_url"] = redis_url
    if both.get("num_retries") is not None:
        settings["retries"] = both["num_retries"]
    timeout = router_settings.get("timeout") or litellm_settings.get("request_timeout")
    if timeout:
        settings["request_timeout_s"] = timeout
    settings["cache"] = _cache(litellm_settings, out)
    breaker = _breaker(both, out)
    if breaker:
        settings["breaker"] = breaker
    _key_limits(litellm_settings, out)
    for section, values in (("general_settings", general), ("router_settings", router_settings),
                            ("litellm_settings", litellm_settings)):  # fmt: skip
        for key in sorted(set(values) - _READ[section], key=str):
            out.untranslated.append(f"{section}.{key}")
    return settings


def _master_key(value: Any, out: Conversion) -> str:
    if not value:
        out.notes.append(f"no general_settings.master_key: {MASTER_KEY_ENV} (set it)")
        return MASTER_KEY_ENV
    text = str(value)
    if not text.startswith(ENV_PREFIX) and len(text) < MIN_MASTER_KEY_CHARS:
        out.untranslated.append(
            f"general_settings.master_key: shorter than {MIN_MASTER_KEY_CHARS} characters, "
            f"which nemorouter refuses; replaced by {MASTER_KEY_ENV} (a long random secret)"
        )
        return MASTER_KEY_ENV
    return text


def _redis_url(router: dict[str, Any], cache_params: dict[str, Any], out: Conversion) -> str | None:
    if router.get("redis_url"):
        return str(router["redis_url"])
    if router.get("redis_host"):
        parts = {k: router.get(f"redis_{k}") for k in ("host", "port", "password", "db")}
    elif cache_params.get("type") == "redis" and cache_params.get("host"):
        parts = {k: cache_params.get(k) for k in ("host", "port", "password")}
    else:
        return None
    if any(str(v).startswith(ENV_PREFIX) for v in parts.values() if v is not None):
        out.untranslated.append(
            "redis host/port/password from the environment: nemorouter takes one URL; set "
            "settings.redis_url: os.environ/REDIS_URL (redis://:PASSWORD@HOST:PORT/0)"
        )
        return None
    auth = f":{parts['password']}@" if parts.get("password") else ""
    return f"redis://{auth}{parts['host']}:{parts.get('port') or 6379}/{parts.get('db') or 0}"


def _cache(litellm_settings: dict[str, Any], out: Conversion) -> dict[str, Any]:
    if not litellm_settings.get("cache"):
        out.notes.append(
            "litellm_settings.cache is off: the response cache is left off (nemorouter's "
            "default is on: identical requests, e.g. re-runs of a batch, are answered free)"
        )
        return {"enabled": False}
    params = litellm_settings.get("cache_params") or {}
    cache: dict[str, Any] = {"enabled": True}
    if params.get("ttl") is not None:
        cache["ttl_s"] = params["ttl"]
    if params.get("type") not in (None, "local", "redis"):
        out.untranslated.append(
            f"litellm_settings.cache_params.type {params['type']}: nemorouter caches in "
            "memory, or in Redis with settings.redis_url"
        )
    if params.get("mode") == "default_off":
        out.untranslated.append(
            "litellm_settings.cache_params.mode default_off: nemorouter caches every request "
            "unless it says `nemo_cache: false` (or LiteLLM's cache: {no-cache: true})"
        )
    for key in sorted(set(params) - {"type", "host", "port", "password", "ttl", "mode"}):
        out.untranslated.append(f"litellm_settings.cache_params.{key}")
    return cache


def _breaker(both: dict[str, Any], out: Conversion) -> dict[str, Any]:
    breaker: dict[str, Any] = {}
    if both.get("allowed_fails") is not None:
        breaker["consecutive_failures"] = int(both["allowed_fails"]) + 1
        out.notes.append(
            f"allowed_fails {both['allowed_fails']} (cool down past that many failures a "
            f"minute): the circuit opens after {breaker['consecutive_failures']} failures in a "
            "row, or when half the calls of the last minute failed"
        )
    if both.get("cooldown_time") is not None:
        breaker["cooldown_s"] = both["cooldown_time"]
    return breaker


def _key_limits(litellm_settings: dict[str, Any], out: Conversion) -> None:
    """Key and team limits: nemorouter keeps keys in its database, so these become the
    commands that create them (`nemorouter keys create`, `nemorouter teams create`)."""
    defaults = litellm_settings.get("default_key_generate_params") or {}
    if defaults:
        flags = _limit_flags(defaults, "default_key_generate_params", out)
        out.commands.append(f"nemorouter keys create --name NAME {flags}".rstrip())
    if litellm_settings.get("upperbound_key_generate_params"):
        out.untranslated.append(
            "litellm_settings.upperbound_key_generate_params: nemorouter has no ceiling on "
            "what the master key grants"
        )
    for i, team in enumerate(litellm_settings.get("default_team_settings") or []):
        where = f"default_team_settings[{i}]"
        if not isinstance(team, dict) or not team.get("team_id"):
            out.untranslated.append(f"litellm_settings.{where}: no team_id")
            continue
        flags = _limit_flags(team, where, out, skip=frozenset({"team_id"}), team=True)
        out.commands.append(f"nemorouter teams create --name {team['team_id']} {flags}".rstrip())


def _limit_flags(
    params: dict[str, Any],
    where: str,
    out: Conversion,
    skip: frozenset[str] = frozenset(),
    team: bool = False,
) -> str:
    flags = []
    for key, flag in (("rpm_limit", "--rpm"), ("tpm_limit", "--tpm"),
                      ("max_budget", "--budget-usd")):  # fmt: skip
        if params.get(key) is not None:
            flags.append(f"{flag} {params[key]}")
    if params.get("models") and not team:  # a team has no model list of its own
        flags.append(f"--models {','.join(map(str, params['models']))}")
    duration = params.get("budget_duration")
    if duration:
        period = _PERIODS.get(str(duration))
        if period:
            flags.append(f"--budget-period {period}")
        else:
            out.untranslated.append(
                f"litellm_settings.{where}.budget_duration {duration}: budgets reset daily, "
                "monthly or never"
            )
    read = {"rpm_limit", "tpm_limit", "max_budget", "budget_duration", *skip}
    read |= set() if team else {"models"}
    for key in sorted(set(params) - read):
        out.untranslated.append(f"litellm_settings.{where}.{key}")
    return " ".join(flags)
