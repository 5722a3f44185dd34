"""The services the admin routes call, built in one place.

Until the composition root builds every service once, the gateway builds these from what
the pipeline holds; `admin_services` is the one function that does it.
"""

from __future__ import annotations

from typing import NamedTuple

from nemorouter.core.deployments import AUTO
from nemorouter.core.key_admin import KeyAdmin
from nemorouter.core.pipeline import Pipeline
from nemorouter.core.spend_queries import SpendQueries


class AdminServices(NamedTuple):
    keys: KeyAdmin
    spend: SpendQueries


def admin_services(pipeline: Pipeline) -> AdminServices:
    return AdminServices(
        keys=KeyAdmin(pipeline.keys, [*pipeline.pool.names, AUTO], pipeline.key_changed),
        spend=SpendQueries(pipeline.store.writer, pipeline.keys),
    )
