"""Tables. Alembic migrations create them; this module is what queries are written against.

Money is stored as integer picodollars (1e-12 USD): exact on both databases (SQLite has
no decimal type) and fine enough for any per-token price with up to 6 decimals per million.
Times are naive UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

from nemorouter.types.options import MAX_JOB_ID

metadata = MetaData()

spend = Table(
    "spend",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("request_id", String(100), nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("day", Date(), nullable=False),
    Column("key_id", String(100), nullable=True),
    Column("team_id", String(100), nullable=True),
    Column("job_id", String(MAX_JOB_ID), nullable=True),
    Column("metadata", Text(), nullable=True),  # JSON: the request's other metadata keys
    Column("model_requested", String(200), nullable=False),
    Column("model", String(200), nullable=True),  # the model that answered
    Column("deployment", String(200), nullable=True),
    Column("provider", String(200), nullable=True),
    Column("prompt_tokens", Integer(), nullable=False, default=0),
    Column("completion_tokens", Integer(), nullable=False, default=0),
    Column("cached_tokens", Integer(), nullable=False, default=0),
    Column("cost_pico", BigInteger(), nullable=True),  # NULL: the provider reported no usage
    Column("cache_hit", Boolean(), nullable=False, default=False),
    Column("saved_pico", BigInteger(), nullable=False, default=0),
    Column("fallbacks", SmallInteger(), nullable=False, default=0),
    Column("attempts", SmallInteger(), nullable=False, default=0),
    Column("stream", Boolean(), nullable=False, default=False),
    Column("status", SmallInteger(), nullable=False),
    Column("error_code", String(64), nullable=True),
    Column("latency_ms", Float(), nullable=False),
    Column("pages", Integer(), nullable=False, default=0),  # PDF pages sent upstream
    # A line of a deferred job (a provider batch API, at its batch price).
    Column("deferred", Boolean(), nullable=False, default=False),
)

Index("ix_spend_created_at", spend.c.created_at)
Index("ix_spend_job", spend.c.job_id, spend.c.created_at)
Index("ix_spend_key", spend.c.key_id, spend.c.created_at)
Index("ix_spend_team", spend.c.team_id, spend.c.created_at)
Index("ix_spend_model", spend.c.model, spend.c.created_at)
Index("ix_spend_request", spend.c.request_id)

teams = Table(
    "teams",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("budget_pico", BigInteger(), nullable=True),
    Column("budget_period", String(10), nullable=True),  # daily | monthly | NULL: lifetime
    Column("rpm", Integer(), nullable=True),
    Column("tpm", Integer(), nullable=True),
    Column("created_at", DateTime(), nullable=False),
)

keys = Table(
    "keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    # SHA-256 of the secret: the secret itself is shown once and never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(20), nullable=False),  # enough to recognise a key in a list
    Column("team_id", String(40), ForeignKey("teams.id"), nullable=True),
    Column("models", Text(), nullable=True),  # JSON list; NULL: every model
    Column("default_tags", Text(), nullable=True),  # JSON list; NULL: the settings' default
    Column("rpm", Integer(), nullable=True),
    Column("tpm", Integer(), nullable=True),
    Column("budget_pico", BigInteger(), nullable=True),
    Column("budget_period", String(10), nullable=True),
    Column("expires_at", DateTime(), nullable=True),
    Column("revoked_at", DateTime(), nullable=True),
    Column("created_at", DateTime(), nullable=False),
)
Index("ix_keys_team", keys.c.team_id)

# --- deferred jobs (/v1/files, /v1/batches; core/deferred). Times are unix seconds. -------

deferred_files = Table(
    "deferred_files",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key_id", String(100), nullable=False),  # the key that owns it (others get 404)
    Column("purpose", String(32), nullable=False),  # batch | batch_output
    Column("filename", String(255), nullable=False),
    Column("bytes", BigInteger(), nullable=False),
    Column("created_at", BigInteger(), nullable=False),
    # In the database, not on a local disk: every instance sharing the store can serve it.
    Column("content", LargeBinary(), nullable=False),
)
Index("ix_deferred_files_key", deferred_files.c.key_id, deferred_files.c.created_at)

deferred_batches = Table(
    "deferred_batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key_id", String(100), nullable=False),
    Column("job_id", String(MAX_JOB_ID), nullable=True),
    Column("input_file_id", String(64), nullable=False),
    Column("output_file_id", String(64), nullable=True),
    Column("error_file_id", String(64), nullable=True),
    Column("status", String(20), nullable=False),
    Column("metadata", Text(), nullable=True),  # JSON, as the caller gave it
    Column("fallback", Boolean(), nullable=False, default=False),  # failed lines retried live
    Column("total", Integer(), nullable=False, default=0),
    Column("completed", Integer(), nullable=False, default=0),
    Column("failed", Integer(), nullable=False, default=0),
    Column("errors", Text(), nullable=True),  # JSON list of {code, message, line}
    Column("created_at", BigInteger(), nullable=False),
    Column("expires_at", BigInteger(), nullable=False),
    Column("in_progress_at", BigInteger(), nullable=True),
    Column("finalizing_at", BigInteger(), nullable=True),
    Column("completed_at", BigInteger(), nullable=True),
    Column("failed_at", BigInteger(), nullable=True),
    Column("expired_at", BigInteger(), nullable=True),
    Column("cancelling_at", BigInteger(), nullable=True),
    Column("cancelled_at", BigInteger(), nullable=True),
)
Index("ix_deferred_batches_key", deferred_batches.c.key_id, deferred_batches.c.created_at)
Index("ix_deferred_batches_status", deferred_batches.c.status)

deferred_parts = Table(
    "deferred_parts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("batch_id", String(64), nullable=False),
    Column("deployment", String(200), nullable=True),  # NULL: lines run interactively
    Column("mode", String(16), nullable=False),  # batch | interactive
    Column("provider_id", String(500), nullable=True),  # stored before anything else
    Column("status", String(20), nullable=False),
    Column("message", Text(), nullable=True),
    Column("polls", Integer(), nullable=False, default=0),
    Column("next_poll_at", Float(), nullable=False, default=0.0),
)
Index("ix_deferred_parts_batch", deferred_parts.c.batch_id)

deferred_lines = Table(
    "deferred_lines",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("line", Integer(), primary_key=True),  # 0-based line of the input file
    Column("custom_id", String(500), nullable=False),
    Column("part_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),  # pending | done | error
    Column("outcome", Text(), nullable=True),  # JSON: the output or error file line
    Column("cost_pico", BigInteger(), nullable=True),
)
Index("ix_deferred_lines_part", deferred_lines.c.part_id, deferred_lines.c.status)

# One poller at a time over every instance sharing the store: the holder renews its lease.
deferred_lease = Table(
    "deferred_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("expires_at", Float(), nullable=False),
)
