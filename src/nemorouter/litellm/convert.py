"""`nemorouter config from-litellm`: a LiteLLM proxy config turned into a nemorouter one.

LiteLLM's format, as documented (BerriAI/litellm docs/my-website/docs/proxy/configs.md and
config_settings.md, docs.litellm.ai/docs/proxy/configs; example litellm/proxy/proxy_config.yaml):
`model_list` entries `{model_name, litellm_params: {model: "<provider>/<id>", api_key,
api_base, vertex_project, vertex_location, vertex_credentials, rpm, tpm, ...}, model_info}`,
where `model_name` is what clients send and several entries of one name share its load;
`router_settings` / `litellm_settings` (`fallbacks: [{a: [b, c]}]`, `num_retries`, timeouts,
`allowed_fails`, `cooldown_time`, redis, cache); `general_settings` (`master_key`,
`database_url`). `os.environ/NAME` references mean the same in both and are kept as they are.

Nothing is dropped silently: what has no nemorouter equivalent is listed (`untranslated`),
and what is carried over with different behaviour is said (`notes`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from nemorouter.catalog import load_catalog
from nemorouter.config import LITELLM_SECTIONS
from nemorouter.litellm.routes import provider_stem, route, slug
from nemorouter.litellm.settings import translate_settings

# Capability flags of LiteLLM's model_info, as nemorouter tags (for models outside the catalog).
_CAPABILITY_TAGS = {
    "supports_vision": "vision",
    "supports_pdf_input": "pdf",
    "supports_response_schema": "structured-output",
    "supports_function_calling": "tools",
}
_TAG = re.compile(r"^[a-z0-9][a-z0-9._:-]*$")
# litellm_params read here; any other key is reported.
_PARAMS_READ = frozenset({
    "model", "api_key", "api_base", "vertex_project", "vertex_ai_project", "vertex_location",
    "vertex_ai_location", "vertex_credentials", "rpm", "tpm", "max_tokens", "tags",
    "input_cost_per_token", "output_cost_per_token",
})  # fmt: skip
_ENTRY_READ = frozenset({"model_name", "litellm_params", "model_info", "rpm", "tpm"})
_INFO_READ = frozenset({
    "id", "mode", "input_cost_per_token", "output_cost_per_token", "max_input_tokens",
    "max_tokens", "max_output_tokens", "base_model", *_CAPABILITY_TAGS,
})  # fmt: skip
_ORDER = ("id", "model", "provider", "provider_model", "rpm", "tpm", "tags", "pricing",
          "context_window", "max_output_tokens")  # fmt: skip
# Version suffixes a catalog name lacks: Vertex `@2025...`, `-001`, dated API ids.
_VERSION_SUFFIXES = (re.compile(r"@.*$"), re.compile(r"-\d{3}$"), re.compile(r"-\d{8}$"),
                     re.compile(r"-\d{4}-\d{2}-\d{2}$"))  # fmt: skip


@dataclass
class Conversion:
    config: dict[str, Any]
    untranslated: list[str] = field(default_factory=list)  # not carried over, and why
    notes: list[str] = field(default_factory=list)  # carried over, but behaving differently
    commands: list[str] = field(default_factory=list)  # keys/teams live in the database

    def render(self, source: str) -> str:
        """The nemorouter YAML, with every untranslated item and note in comments on top."""
        lines = [f"# nemorouter config converted from the LiteLLM config {source}",
                 "# by `nemorouter config from-litellm`. Check it with `nemorouter check`."]  # fmt: skip
        for title, items in (
            ("NOT TRANSLATED (no nemorouter equivalent; do it another way or drop it)",
             self.untranslated),
            ("Translated, but nemorouter behaves differently", self.notes),
            ("Keys and teams live in nemorouter's database, not in the config; create them with",
             self.commands),
        ):  # fmt: skip
            if items:
                lines += ["#", f"# {title}:"]
                lines += [f"#   - {item}" for item in items]
        body = yaml.safe_dump(self.config, sort_keys=False, allow_unicode=True, width=100)
        return "\n".join(lines) + "\n\n" + body


def is_litellm_config(data: Any) -> bool:
    return isinstance(data, dict) and any(key in data for key in LITELLM_SECTIONS)


def convert(data: dict[str, Any]) -> Conversion:
    """Translate a parsed LiteLLM config."""
    out = Conversion(config={})
    settings_sections = {
        name: _section(data, name, out) for name in ("litellm_settings", "router_settings")
    }
    general = _section(data, "general_settings", out)
    models = _Models(out, settings_sections["litellm_settings"])
    for i, entry in enumerate(data.get("model_list") or []):
        models.add(i, entry)
    models.finish_groups(settings_sections["router_settings"].get("model_group_alias"))
    _fallbacks(models, out, **settings_sections)
    settings = translate_settings(general, out=out, **settings_sections)
    env = data.get("environment_variables")
    if isinstance(env, dict) and env:
        names = ", ".join(sorted(map(str, env)))
        out.untranslated.append(
            f"environment_variables (values not copied): set {names} in nemorouter's environment"
        )
    for key in data:
        if key not in (*LITELLM_SECTIONS, "environment_variables"):
            out.untranslated.append(f"top-level `{key}`")
    out.config = {"settings": settings, "providers": models.providers,
                  "deployments": models.deployments}  # fmt: skip
    if models.groups:
        out.config["groups"] = models.groups
    return out


def _section(data: dict[str, Any], name: str, out: Conversion) -> dict[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        out.untranslated.append(f"{name}: not a mapping")
        return {}
    return value


class _Models:
    """model_list entries as providers, deployments and alias groups."""

    def __init__(self, out: Conversion, litellm_settings: dict[str, Any]) -> None:
        self.out = out
        self.catalog = load_catalog()
        self.defaults = litellm_settings  # vertex_project / vertex_location may sit there
        self.providers: dict[str, dict[str, Any]] = {}
        self._provider_names: dict[tuple[Any, ...], str] = {}
        self.deployments: list[dict[str, Any]] = []
        self.groups: dict[str, list[str]] = {}
        self.aliases: dict[str, list[str]] = {}  # model_name -> nemorouter models, in order

    @property
    def models(self) -> set[str]:
        return {d["model"] for d in self.deployments}

    def add(self, i: int, entry: Any) -> None:
        where = f"model_list[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("litellm_params"), dict):
            self.out.untranslated.append(f"{where}: no litellm_params")
            return
        name = str(entry.get("model_name") or "")
        params, info = entry["litellm_params"], entry.get("model_info") or {}
        where = f"{where} (model_name {name})"
        litellm_model = str(params.get("model") or "")
        said: list[str] = []
        found = route(litellm_model, params, self.defaults, said)
        self.out.notes += [f"{where}: {note}" for note in said]
        if isinstance(found, str):
            self.out.untranslated.append(f"{where}: model {litellm_model!r}: {found}")
            return
        provider, upstream = found
        model = self._catalog_name(upstream)
        deployment: dict[str, Any] = {"id": self._id(info.get("id") or name), "model": model}
        if model is None and not self._declare(deployment, name, upstream, params, info, where):
            return
        deployment["provider"] = self._provider(provider)
        if upstream != deployment["model"]:
            deployment["provider_model"] = upstream
        for key in ("rpm", "tpm"):  # in litellm_params, or beside them (LiteLLM's Router)
            value = params.get(key, entry.get(key))
            if value is not None:
                deployment[key] = value
        if params.get("max_tokens") is not None:
            deployment["max_output_tokens"] = params["max_tokens"]
            self.out.notes.append(
                f"{where}: max_tokens {params['max_tokens']} became max_output_tokens: sent (and "
                "reserved from budgets) when a request names no max_tokens; a client's own "
                "max_tokens is sent as it is"
            )
        tags = [str(t) for t in params.get("tags") or []]
        deployment_tags = [t for t in tags if _TAG.match(t)] + deployment.pop("tags", [])
        if deployment_tags:
            deployment["tags"] = sorted(set(deployment_tags))
        for tag in (t for t in tags if not _TAG.match(t)):
            self.out.untranslated.append(f"{where}: tag {tag!r} (tags are [a-z0-9._:-])")
        for key in sorted(set(entry) - _ENTRY_READ, key=str):
            self.out.untranslated.append(f"{where}: {key}")
        for key in sorted(set(params) - _PARAMS_READ):
            self.out.untranslated.append(f"{where}: litellm_params.{key}")
        for key in sorted(set(info) - _INFO_READ) if isinstance(info, dict) else ():
            self.out.untranslated.append(f"{where}: model_info.{key}")
        self.deployments.append({k: deployment[k] for k in _ORDER if k in deployment})
        if name:
            self.aliases.setdefault(name, [])
            if deployment["model"] not in self.aliases[name]:
                self.aliases[name].append(deployment["model"])

    def _catalog_name(self, upstream: str) -> str | None:
        candidates = [upstream, upstream.rsplit("/", 1)[-1]]
        for pattern in _VERSION_SUFFIXES:
            candidates.append(pattern.sub("", candidates[1]))
        return next((c for c in candidates if c in self.catalog), None)

    def _declare(
        self,
        deployment: dict[str, Any],
        name: str,
        upstream: str,
        params: dict[str, Any],
        info: Any,
        where: str,
    ) -> bool:
        """A model outside the catalog states its own price and window, or is not carried
        over: nemorouter never serves a model at an unknown price (never charged $0)."""
        info = info if isinstance(info, dict) else {}
        prices = [_per_mtok(info.get(k, params.get(k)))
                  for k in ("input_cost_per_token", "output_cost_per_token")]  # fmt: skip
        window = info.get("max_input_tokens") or info.get("max_tokens")
        missing = [what for what, value in (("input_cost_per_token", prices[0]),
                   ("output_cost_per_token", prices[1]), ("max_input_tokens", window))
                   if value is None]  # fmt: skip
        if missing:
            self.out.untranslated.append(
                f"{where}: {upstream!r} is not in nemorouter's catalog and model_info states no "
                f"{', '.join(missing)}: add the deployment by hand with pricing "
                "{input_per_mtok, output_per_mtok} and context_window"
            )
            return False
        clash = name in self.catalog or name in self.models or not name
        deployment["model"] = slug(upstream) if clash else name
        deployment["pricing"] = {"input_per_mtok": prices[0], "output_per_mtok": prices[1]}
        deployment["context_window"] = int(window)
        if info.get("max_output_tokens"):
            deployment["max_output_tokens"] = int(info["max_output_tokens"])
        deployment["tags"] = [tag for flag, tag in _CAPABILITY_TAGS.items() if info.get(flag)]
        return True

    def _provider(self, settings: dict[str, Any]) -> str:
        key = tuple(sorted((k, str(v)) for k, v in settings.items()))
        if key in self._provider_names:
            return self._provider_names[key]
        stem = provider_stem(settings)
        name, n = stem, 1
        while name in self.providers:
            n += 1
            name = f"{stem}-{n}"
        self.providers[name] = settings
        self._provider_names[key] = name
        return name

    def _id(self, wanted: Any) -> str:
        stem = slug(str(wanted)) or "deployment"
        taken = {d["id"] for d in self.deployments}
        name, n = stem, 1
        while name in taken:
            n += 1
            name = f"{stem}-{n}"
        return name

    def finish_groups(self, model_group_alias: Any) -> None:
        """A model_name that is not the model itself becomes a group of the models it
        stands for (LiteLLM load-balances them; nemorouter tries them in order)."""
        models = self.models
        for name, chain in self.aliases.items():
            if chain == [name]:
                continue
            if name in models:
                others = [m for m in chain if m != name]
                self.out.notes.append(
                    f"model_name {name}: `{name}` is a model here and stands for itself; its "
                    f"other deployments answer to {', '.join(others)}"
                )
                continue
            self.groups[name] = list(chain)
            if len(chain) > 1:
                self.out.notes.append(
                    f"model_name {name}: LiteLLM load-balanced {', '.join(chain)}; the group "
                    f"`{name}` tries them in this order (deployments of one model share load)"
                )
        for alias, target in (model_group_alias or {}).items():
            target = target.get("model") if isinstance(target, dict) else target
            chain = self.resolve(str(target))
            if chain is None or alias in models:
                self.out.untranslated.append(
                    f"router_settings.model_group_alias.{alias}: -> {target!r} names no model"
                )
            else:
                self.groups[str(alias)] = chain

    def resolve(self, name: str) -> list[str] | None:
        if name in self.groups:
            return list(self.groups[name])
        return [name] if name in self.models else None


def _fallbacks(
    models: _Models,
    out: Conversion,
    litellm_settings: dict[str, Any],
    router_settings: dict[str, Any],
) -> None:
    """`fallbacks: [{a: [b, c]}]` (router_settings over litellm_settings) as chains."""
    chains: dict[str, list[str]] = {}
    for where, section in (("litellm_settings", litellm_settings),
                           ("router_settings", router_settings)):  # fmt: skip
        for entry in section.get("fallbacks") or []:
            for start, then in entry.items() if isinstance(entry, dict) else ():
                chains[str(start)] = [str(t) for t in (then or [])]
        for kind in ("context_window_fallbacks", "content_policy_fallbacks", "default_fallbacks"):
            if section.get(kind):
                out.untranslated.append(
                    f"{where}.{kind}: nemorouter has one chain for every failure (a request "
                    "never goes to a model whose window it exceeds)"
                )
    for start, then in chains.items():
        head = models.resolve(start)
        if head is None:
            why = (
                "a default for every model: nemorouter's chains are groups, add the "
                "fallbacks to each group"
                if start == "*"
                else f"{start!r} names no model"
            )
            out.untranslated.append(f"fallbacks {start} -> {then}: {why}")
            continue
        chain = list(head)
        for name in then:
            link = models.resolve(name)
            if link is None:
                out.untranslated.append(f"fallbacks {start} -> {name}: names no model")
                continue
            chain += [m for m in link if m not in chain]
        if start in models.groups:
            models.groups[start] = chain
            continue
        group = f"{start}-fallbacks"
        models.groups[group] = chain
        out.notes.append(
            f"fallbacks {start} -> {', '.join(then)}: `{start}` is a model, which stands for "
            f"itself in nemorouter; clients send `{group}` (or `fallbacks` per request) to get "
            "the chain"
        )


def _per_mtok(value: Any) -> str | None:
    """LiteLLM's USD per token as nemorouter's USD per million tokens (exact decimal)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        per_mtok = Decimal(str(value)) * 1_000_000
    except InvalidOperation:
        return None
    return format(per_mtok.normalize(), "f")
