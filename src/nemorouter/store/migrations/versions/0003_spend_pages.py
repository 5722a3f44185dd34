"""PDF pages sent upstream, per spend row (DESIGN §2.1 `x-nemo-pages`).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # server_default: rows written before this revision sent no counted PDF page.
    op.add_column(
        "spend", sa.Column("pages", sa.Integer(), nullable=False, server_default=sa.text("0"))
    )


def downgrade() -> None:
    with op.batch_alter_table("spend") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("pages")
