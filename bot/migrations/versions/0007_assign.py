"""Officers assign unanswered questions (``unanswered.assigned_to``); a dossier import can be undone
(``dossier_imports.undo``: the ids it inserted and the previous values of the rows it updated;
``undone_at``/``undone_by``).

Revision ID: 0007
Revises: 0006 (the web transcript, split groups)
Create Date: 2026-11-30 06:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("unanswered") as batch:
        batch.add_column(sa.Column("assigned_to", sa.String(length=64), nullable=True))
        batch.create_index(batch.f("ix_unanswered_assigned_to"), ["assigned_to"], unique=False)
    with op.batch_alter_table("dossier_imports") as batch:
        batch.add_column(sa.Column("undo", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("undone_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("undone_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dossier_imports") as batch:
        batch.drop_column("undone_by")
        batch.drop_column("undone_at")
        batch.drop_column("undo")
    with op.batch_alter_table("unanswered") as batch:
        batch.drop_index(batch.f("ix_unanswered_assigned_to"))
        batch.drop_column("assigned_to")
