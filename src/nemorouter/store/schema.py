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
