"""The web chat's transcript (``chat_transcript``), restored when the citizen reloads the page; the officers'
split of unanswered groups (``unanswered.group_label``).

Revision ID: 0006
Revises: 0005 (the reliability migration: inbox, rate events)
Create Date: 2026-11-30 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_transcript",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("buttons", sa.JSON(), nullable=True),
        sa.Column("payload", sa.String(length=64), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_transcript")),
        sa.UniqueConstraint("outbox_id", name=op.f("uq_chat_transcript_outbox_id")),
    )
    op.create_index("ix_chat_transcript_chat", "chat_transcript", ["channel", "chat_id", "id"], unique=False)
    op.create_index(op.f("ix_chat_transcript_created_at"), "chat_transcript", ["created_at"], unique=False)
    with op.batch_alter_table("unanswered") as batch:
        batch.add_column(sa.Column("group_label", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("unanswered") as batch:
        batch.drop_column("group_label")
    op.drop_index(op.f("ix_chat_transcript_created_at"), table_name="chat_transcript")
    op.drop_index("ix_chat_transcript_chat", table_name="chat_transcript")
    op.drop_table("chat_transcript")
