"""The configured deployments at run time: which serve a model, and how busy each is."""

from __future__ import annotations

import datetime
import logging

from nemorouter.catalog import CatalogModel, batch_pricing, load_catalog
from nemorouter.config import Config, ConfigError, DeploymentConfig, ProviderConfig
from nemorouter.core.prompt_correction import PromptCorrection
from nemorouter.providers.base import ProviderAdapter
from nemorouter.providers.pdf_pages import page_size
from nemorouter.types.image_tokens import image_tokens, rule_for
from nemorouter.types.prices import Pricing
from nemorouter.types.request import PDF_PAGE_TOKENS
from nemorouter.types.target import Target

log = logging.getLogger("nemorouter.deployments")
AUTO = "auto"
CLAUDE_TYPES = frozenset({"anthropic", "anthropic-vertex"})
# The Anthropic SDK refuses a non-streaming call whose max_tokens it expects to take more than
# 10 minutes at 128,000 tokens an hour (above 21,333 tokens) and gives the others a 10-minute
# timeout: anthropics/anthropic-sdk-python src/anthropic/_base_client.py
# `_calculate_nonstreaming_timeout` (maximum_time 3600 s, default_time 600 s, 128_000).
SDK_TOKENS_PER_HOUR = 128_000
SDK_NONSTREAMING_S = 600
# Below this the timeout no longer decides (a shorter timeout is the operator's own choice):
# the gateway's earlier default, anthropic_request.DEFAULT_MAX_TOKENS.
NONSTREAMING_FLOOR = 4096
RETIRING_SOON_DAYS = 30


class Deployment:
    """One model at one provider, with its live in-flight count.

    `target` is what its adapter receives; the facts the router and the budget read
    (window, max output, prices) are the target's, so a call and its reservations agree."""

    __slots__ = (
        "adapter",
        "batch_pricing",
        "config",
        "context_window",
        "id",
        "image_rule",
        "in_flight",
        "max_output_tokens",
        "model",
        "pdf_page_tokens",
        "pricing",
        "prompt_correction",
        "provider_type",
        "reads_gcs",
        "renders_pdf",
        "tags",
        "target",
    )

    def __init__(
        self,
        config: DeploymentConfig,
        adapter: ProviderAdapter,
        facts: CatalogModel | None,
        provider: ProviderConfig | None = None,
        timeout_s: float = SDK_NONSTREAMING_S,
    ) -> None:
        self.config = config
        self.adapter = adapter
        self.id = config.id
        self.model = config.model
        self.provider_type = provider.type if provider is not None else ""
        own = frozenset(config.tags)
        self.tags = own | facts.capabilities if facts else own
        # `pdf: pages`: the gateway renders PDFs into page images for it (DESIGN §2.2).
        self.renders_pdf = config.pdf == "pages"
        if self.renders_pdf:
            self.tags |= {"pdf"}
        # Cloud Storage files (gs://) are read by Vertex AI itself (fileData); no other
        # upstream can, and the gateway does not render them.
        self.reads_gcs = provider is not None and provider.type == "vertex" and not self.renders_pdf
        self.target = target = resolve_target(config, facts, provider, timeout_s)
        self.context_window = target.context_window
        self.max_output_tokens = target.max_output_tokens
        self.pricing = target.pricing
        # The price of its lines in a provider batch (deferred jobs); None: none known.
        self.batch_pricing = resolve_batch_pricing(config, facts, provider, target.pricing)
        self.in_flight = 0
        # How its provider counts image tokens, and the learned ratio of the prompt tokens it
        # reports to the gateway's estimate: budget reservations use both.
        family = facts.provider_family if facts else None
        self.image_rule = rule_for(family, config.model, provider.type if provider else "")
        self.prompt_correction = PromptCorrection()
        # What one PDF page costs it: a rendered page image under its image rule, else the
        # catalog's figure (a model declared in the config: the highest catalog figure).
        if self.renders_pdf:
            self.pdf_page_tokens = image_tokens(self.image_rule, rendered_page_size(config))
        elif facts is not None and facts.pdf_tokens_per_page is not None:
            self.pdf_page_tokens = facts.pdf_tokens_per_page
        else:
            self.pdf_page_tokens = PDF_PAGE_TOKENS


# The page rendered for the token estimate: A4 portrait, in points (the common scan size;
# US Letter is a little smaller).
A4_POINTS = (595.0, 842.0)


def rendered_page_size(config: DeploymentConfig) -> tuple[int, int]:
    """Pixel size of an A4 page rendered at the deployment's dpi and size cap."""
    return page_size(*A4_POINTS, config.pdf_dpi, config.pdf_max_side)


def resolve_target(
    config: DeploymentConfig,
    facts: CatalogModel | None,
    provider: ProviderConfig | None = None,
    timeout_s: float = SDK_NONSTREAMING_S,
) -> Target:
    """The deployment's own values, else the catalog's for its provider type and location
    (prices: its own `pricing` laid over the catalog's, see config.PricingConfig); the
    parameters the model refuses and whether it answers json_schema natively at this
    provider are the catalog's."""
    kind = provider.type if provider else ""
    pricing = facts.pricing_for(kind, provider.location if provider else None) if facts else None
    if config.pricing is not None:
        pricing = config.pricing.override().over(pricing)
    max_output = config.max_output_tokens or (facts.max_output_tokens if facts else None)
    nonstreaming = None
    if kind in CLAUDE_TYPES and max_output:
        limit = facts.nonstreaming_max_tokens if facts else None
        nonstreaming = nonstreaming_default(max_output, limit, timeout_s)
    return Target(
        deployment_id=config.id,
        provider_model=config.upstream_model,
        model=config.model,
        max_output_tokens=max_output,
        context_window=config.context_window or (facts.context_window if facts else 0),
        pricing=pricing,
        refuses=facts.refuses if facts else frozenset(),
        native_structured=facts is not None and kind in facts.native_structured,
        nonstreaming_max_tokens=nonstreaming,
    )


def resolve_batch_pricing(
    config: DeploymentConfig,
    facts: CatalogModel | None,
    provider: ProviderConfig | None,
    pricing: Pricing | None,
) -> Pricing | None:
    """The deployment's own `batch_discount` over its price, else the catalog's batch price
    for its provider type; None (the lines run interactively) when neither is known or the
    deployment sets `batch: false`."""
    if not config.batch or pricing is None:
        return None
    kind = provider.type if provider else ""
    if config.batch_discount is not None:
        return batch_pricing(pricing, config.batch_discount, kind)
    if facts is None or config.pricing is not None:  # own prices: only its own share applies
        return None
    return facts.batch_pricing_for(kind, provider.location if provider else None)


def nonstreaming_default(max_output: int, model_limit: int | None, timeout_s: float) -> int:
    """The max_tokens a non-streaming Claude call is sent when the client names none: what
    the SDK's estimate lets finish within both its 10 minutes and our own call timeout
    (a longer answer would be paid for and then cut off), and the model's own non-streaming
    limit. A client's max_tokens is sent as it is; a stream gets the model's max output."""
    seconds = min(float(SDK_NONSTREAMING_S), timeout_s)
    by_time = max(int(SDK_TOKENS_PER_HOUR * seconds // 3600), NONSTREAMING_FLOOR)
    return min(max_output, by_time, model_limit or max_output)


def lifecycle_warning(
    deployment: DeploymentConfig, kind: str, facts: CatalogModel, today: datetime.date
) -> str | None:
    """One line for a deployment whose model is retired, or retires within 30 days."""
    retires = facts.retires_on(kind)
    if retires is None:
        return None
    left = (retires - today).days
    where = f"deployment {deployment.id!r}: model {deployment.model!r} ({kind})"
    if left <= 0:
        return (
            f"{where} was retired on {retires}: its calls fail, or are served by another "
            "model at that model's price; move it to a current model"
        )
    if left <= RETIRING_SOON_DAYS:
        return f"{where} retires on {retires} (in {left} days); move it to a current model"
    return None


class DeploymentPool:
    """Deployments by model, and the model chains that `model` names resolve to."""

    def __init__(
        self,
        config: Config,
        adapters: dict[str, ProviderAdapter],
        today: datetime.date | None = None,
    ) -> None:
        catalog = load_catalog()
        today = today or datetime.datetime.now(datetime.UTC).date()
        timeout = config.settings.request_timeout_s
        self.by_model: dict[str, list[Deployment]] = {}
        for i, dep in enumerate(config.deployments):
            provider = config.providers[dep.provider]
            facts = catalog.get(dep.model)
            deployment = Deployment(dep, adapters[dep.provider], facts, provider, timeout)
            if deployment.pricing is None:  # parse_config refuses it first; never charge $0
                raise ConfigError(
                    f"deployments[{i}].pricing",
                    f"deployment {dep.id!r}: no price is known for {dep.model!r}",
                )
            warning = lifecycle_warning(dep, provider.type, facts, today) if facts else None
            if warning:
                log.warning("%s", warning)
            target = deployment.target
            if target.nonstreaming_max_tokens not in (None, target.max_output_tokens):
                log.info(
                    "deployment %r: non-streaming calls that name no max_tokens are sent %d "
                    "(the Anthropic SDK's pace within request_timeout_s %.0f s); streams get %s",
                    dep.id, target.nonstreaming_max_tokens, timeout, target.max_output_tokens,
                )  # fmt: skip
            self.by_model.setdefault(dep.model, []).append(deployment)
        self.groups = {name: list(chain) for name, chain in config.groups.items()}
        self._auto = list(self.by_model)

    def chain(self, name: str) -> list[str] | None:
        """The ordered models a requested name stands for, or None if it names nothing."""
        if name in self.by_model:
            return [name]
        if name in self.groups:
            return self.groups[name]
        if name == AUTO:
            return self._auto
        return None

    @property
    def names(self) -> list[str]:
        return [*self.by_model, *self.groups]
