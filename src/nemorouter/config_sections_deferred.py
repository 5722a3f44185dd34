"""The config file's `settings.deferred` section (deferred jobs: /v1/files, /v1/batches)."""

from __future__ import annotations

from nemorouter.config_sections import PositiveFloat, PositiveInt, Section


class DeferredSettings(Section):
    """Deferred jobs (/v1/files, /v1/batches; README "Deferred jobs")."""

    # An input file is kept in the database: OpenAI allows 200 MB and 50,000 lines; the
    # gateway's default bound is lower on size (a row of that size strains SQLite).
    max_file_mb: PositiveFloat = 100.0
    max_lines: PositiveInt = 50_000
    # Polling a provider batch: first after poll_s, then doubling up to poll_max_s.
    poll_s: PositiveFloat = 5.0
    poll_max_s: PositiveFloat = 120.0
    # How often the poller looks for work, and its lease (one poller over all instances).
    tick_s: PositiveFloat = 1.0
    lease_s: PositiveFloat = 30.0
    # Lines of one part run through the interactive path at most this many at once.
    interactive_concurrency: PositiveInt = 8
