"""The configured deployments at run time: which serve a model, and how busy each is."""

from __future__ import annotations

from nemorouter.catalog import CatalogModel, load_catalog
from nemorouter.config import Config, DeploymentConfig
from nemorouter.core.prompt_correction import PromptCorrection
from nemorouter.providers.base import ProviderAdapter
from nemorouter.providers.pdf_pages import page_size
from nemorouter.types.image_tokens import image_tokens, rule_for
from nemorouter.types.prices import Pricing
from nemorouter.types.request import PDF_PAGE_TOKENS
from nemorouter.types.target import Target

AUTO = "auto"


class Deployment:
    """One model at one provider, with its live in-flight count.

    `target` is what its adapter receives; the facts the router and the budget read
    (window, max output, prices) are the target's, so a call and its reservations agree."""

    __slots__ = (
        "adapter",
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
        provider_type: str = "",
    ) -> None:
        self.config = config
        self.adapter = adapter
        self.id = config.id
        self.model = config.model
        own = frozenset(config.tags)
        self.tags = own | facts.capabilities if facts else own
        # `pdf: pages`: the gateway renders PDFs into page images for it (DESIGN §2.2).
        self.renders_pdf = config.pdf == "pages"
        if self.renders_pdf:
            self.tags |= {"pdf"}
        # Cloud Storage files (gs://) are read by Vertex AI itself (fileData); no other
        # upstream can, and the gateway does not render them.
        self.reads_gcs = provider_type == "vertex" and not self.renders_pdf
        self.target = target = resolve_target(config, facts)
        self.context_window = target.context_window
        self.max_output_tokens = target.max_output_tokens
        self.pricing = target.pricing
        self.in_flight = 0
        # How its provider counts image tokens, and the learned ratio of the prompt tokens it
        # reports to the gateway's estimate: budget reservations use both.
        family = facts.provider_family if facts else None
        self.image_rule = rule_for(family, config.model, provider_type)
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


def resolve_target(config: DeploymentConfig, facts: CatalogModel | None) -> Target:
    """The deployment's own values, else the catalog's."""
    pricing = facts.pricing if facts else None
    if config.pricing is not None:
        pricing = Pricing(
            config.pricing.input_per_mtok,
            config.pricing.output_per_mtok,
            config.pricing.cached_input_per_mtok,
        )
    return Target(
        deployment_id=config.id,
        provider_model=config.upstream_model,
        model=config.model,
        max_output_tokens=config.max_output_tokens or (facts.max_output_tokens if facts else None),
        context_window=config.context_window or (facts.context_window if facts else 0),
        pricing=pricing,
    )


class DeploymentPool:
    """Deployments by model, and the model chains that `model` names resolve to."""

    def __init__(self, config: Config, adapters: dict[str, ProviderAdapter]) -> None:
        catalog = load_catalog()
        self.by_model: dict[str, list[Deployment]] = {}
        for dep in config.deployments:
            provider_type = config.providers[dep.provider].type
            facts = catalog.get(dep.model)
            deployment = Deployment(dep, adapters[dep.provider], facts, provider_type)
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
