"""Deferred jobs: files, batches, parts, lines, the poller's lease; `spend.deferred`.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spend") as batch:
        batch.add_column(
            sa.Column("deferred", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "deferred_files",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_deferred_files_key", "deferred_files", ["key_id", "created_at"])
    op.create_table(
        "deferred_batches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(100), nullable=False),
        sa.Column("job_id", sa.String(200), nullable=True),
        sa.Column("input_file_id", sa.String(64), nullable=False),
        sa.Column("output_file_id", sa.String(64), nullable=True),
        sa.Column("error_file_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=True),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), nullable=True)
            for name in (
                "in_progress_at",
                "finalizing_at",
                "completed_at",
                "failed_at",
                "expired_at",
                "cancelling_at",
                "cancelled_at",
            )
        ),
    )
    op.create_index("ix_deferred_batches_key", "deferred_batches", ["key_id", "created_at"])
    op.create_index("ix_deferred_batches_status", "deferred_batches", ["status"])
    op.create_table(
        "deferred_parts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("deployment", sa.String(200), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("provider_id", sa.String(500), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("next_poll_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_deferred_parts_batch", "deferred_parts", ["batch_id"])
    op.create_table(
        "deferred_lines",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("line", sa.Integer(), primary_key=True),
        sa.Column("custom_id", sa.String(500), nullable=False),
        sa.Column("part_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("cost_pico", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_deferred_lines_part", "deferred_lines", ["part_id", "status"])
    op.create_table(
        "deferred_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    for table in ("deferred_lease", "deferred_lines", "deferred_parts", "deferred_batches"):
        op.drop_table(table)
    op.drop_table("deferred_files")
    with op.batch_alter_table("spend") as batch:
        batch.drop_column("deferred")
